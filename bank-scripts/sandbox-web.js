// The reference bank script: the sandbox bank's website (docs/browser-scripts.md walks through it).
// A bank script is an ES module run in its own worker thread; `page` is a Playwright Page in a fresh
// browser context that carries the account's saved cookies, `ctx` is the runtime's narrow interface.

export const bank = 'sandbox-web';
export const version = '1.0.0';
export const credentialFields = [
  { name: 'username', label: 'Username', type: 'text', required: true },
  { name: 'password', label: 'Password', type: 'password', required: true },
];

// The cookie in which the bank remembers a trusted device: its end is when the next login needs a code.
export const trustCookies = ['sbw_device'];

const url = (ctx, path) => new URL(path, ctx.baseUrl).toString();
const pathOf = (page) => new URL(page.url()).pathname;

/** Clicks a button that submits a form and waits for the next page. */
async function submit(page, button) {
  await Promise.all([page.waitForEvent('framenavigated', (frame) => frame === page.mainFrame()), button.click()]);
  await page.waitForLoadState('domcontentloaded');
}

/** The cookie banner covers the page until accepted (accepted once, the saved cookies keep it away). */
async function acceptCookies(page) {
  const banner = page.locator('#cookie-banner');
  if (await banner.isVisible()) await submit(page, banner.getByRole('button', { name: /accept/i }));
}

/** What a page that is neither the code, approval nor accounts page says went wrong. */
async function failure(page, ctx) {
  const alert = (await page.locator('[role=alert]').first().textContent({ timeout: 2000 }).catch(() => '')) ?? '';
  if (/locked/i.test(alert)) ctx.fail('account_locked', 'the bank reports the account locked');
  if (/wrong password|unknown username/i.test(alert)) ctx.fail('invalid_credentials', 'the bank refused the username or password');
  if (/try again later|unavailable/i.test(alert)) ctx.fail('bank_unavailable', 'the bank website is unavailable');
  if (/expired/i.test(alert)) ctx.fail('code_rejected', 'the bank says the login expired');
  throw new Error(`unexpected page ${pathOf(page)}`);
}

async function codeStep(page, ctx) {
  ctx.stage('code');
  const input = page.locator('#code');
  const length = Number(await input.getAttribute('data-length')) || null;
  const type = (await input.getAttribute('data-type')) === 'alphanumeric' ? 'alphanumeric' : 'numeric';
  const prompt = await page.locator('#code-prompt').textContent();
  await ctx.requestCode(
    // The bank locks the login on its third wrong code: keep one attempt in hand.
    { length, type, purpose: 'login', prompt, channel: 'sms', max_attempts: 2 },
    async (code) => {
      await page.locator('#code').fill(code);
      await page.getByLabel('Trust this device').check();
      await submit(page, page.getByRole('button', { name: 'Verify' }));
      const path = pathOf(page);
      if (path.endsWith('/accounts')) return { outcome: 'accepted' };
      if (path.endsWith('/otp')) return { outcome: 'rejected', reason: 'the bank rejected the code' };
      return failure(page, ctx);
    },
    {
      resend: async () => {
        await submit(page, page.getByRole('button', { name: 'Send a new code' }));
      },
    },
  );
}

async function approvalStep(page, ctx) {
  ctx.stage('approval');
  const prompt = await page.locator('#approval-prompt').textContent();
  await ctx.requestApproval(
    { purpose: 'login', prompt },
    async () => {
      await submit(page, page.getByRole('button', { name: 'I have approved' }));
      const path = pathOf(page);
      if (path.endsWith('/accounts')) return { outcome: 'approved' };
      if (path.endsWith('/approval')) return { outcome: 'pending' };
      return { outcome: 'expired' };
    },
    { pollMs: 500 },
  );
}

export async function login(page, ctx) {
  ctx.stage('login_page');
  await page.goto(url(ctx, 'login'));
  await acceptCookies(page);
  // Located by label, not position: the compact layout puts the password first.
  await page.getByLabel('Username').fill(ctx.credentials.username);
  await page.getByLabel('Password').fill(ctx.credentials.password);
  await submit(page, page.getByRole('button', { name: /^(log in|sign in)$/i }));
  const path = pathOf(page);
  if (path.endsWith('/otp')) await codeStep(page, ctx);
  else if (path.endsWith('/approval')) await approvalStep(page, ctx);
  else if (!path.endsWith('/accounts')) await failure(page, ctx);
  await page.locator('#accounts').waitFor();
  ctx.stage('logged_in');
}

// The accounts page is slow: one read serves a scrape's accounts, balances and movements. A kept
// (persistent) session's next scrape reads it again.
const ACCOUNTS_FRESH_MS = 30_000;
let accountsRead = null;

function accountRows(page, ctx) {
  if (accountsRead === null || Date.now() - accountsRead.at > ACCOUNTS_FRESH_MS) {
    accountsRead = { at: Date.now(), rows: readAccountRows(page, ctx) };
    accountsRead.rows.catch(() => {
      accountsRead = null;
    });
  }
  return accountsRead.rows;
}

/** The website sends a timed-out visit to its login page. */
function ended(page, ctx) {
  if (pathOf(page).endsWith('/login')) ctx.fail('bank_unavailable', 'the bank session ended');
}

/** For a kept session: still logged in? (Visiting a page also keeps the website's session alive.) */
export async function keepAlive(page, ctx) {
  await page.goto(url(ctx, 'accounts'));
  return !pathOf(page).endsWith('/login');
}

async function readAccountRows(page, ctx) {
  await page.goto(url(ctx, 'accounts'));
  ended(page, ctx);
  return page.$$eval('#accounts tbody tr', (rows) =>
    rows.map((row) => ({
      id: row.getAttribute('data-account-id'),
      name: row.querySelector('td a').textContent.trim(),
      iban: row.querySelector('.iban').textContent.trim(),
      balance: row.querySelector('.amount').textContent.trim(),
      currency: row.querySelector('.amount').getAttribute('data-currency'),
    })),
  );
}

export async function bankAccounts(page, ctx) {
  ctx.stage('accounts');
  return (await accountRows(page, ctx)).map((a) => ({
    id: a.id,
    name: a.name,
    iban: a.iban,
    number: null,
    currency: a.currency,
    type: /savings/i.test(a.name) ? 'savings' : 'current',
  }));
}

export async function balances(page, ctx) {
  ctx.stage('balances');
  const asOf = new Date().toISOString();
  return (await accountRows(page, ctx)).map((a) => ({
    bank_account_id: a.id,
    current: a.balance,
    available: a.balance,
    currency: a.currency,
    as_of: asOf,
  }));
}

export async function identity(page, ctx) {
  ctx.stage('identity');
  await page.goto(url(ctx, 'profile'));
  ended(page, ctx);
  const text = async (selector) => ((await page.locator(selector).textContent()) ?? '').trim() || null;
  return { name: await text('#profile .name'), email: await text('#profile .email'), phone: await text('#profile .phone') };
}

export async function movements(page, ctx, range) {
  ctx.stage('movements');
  const accounts = await accountRows(page, ctx);
  const out = [];
  for (const account of accounts) {
    let next = url(ctx, `accounts/${encodeURIComponent(account.id)}/movements?from=${range.from}&to=${range.to}`);
    // Follow the table's pages; both layouts mark each movement with data-id.
    while (next) {
      await page.goto(next);
      ended(page, ctx);
      const rows = await page.$$eval('#movements [data-id]', (items) =>
        items.map((item) => {
          const pick = (selector) => item.querySelector(selector)?.textContent.trim() ?? null;
          return {
            id: item.getAttribute('data-id'),
            booked_at: item.getAttribute('data-booked') ?? item.querySelector('[data-booked]').getAttribute('data-booked'),
            amount: pick('.amount'),
            name: pick('.name'),
            reference: pick('.reference'),
          };
        }),
      );
      for (const row of rows) out.push({ ...row, bank_account_id: account.id, currency: account.currency });
      const link = page.locator('a[rel=next]');
      const href = (await link.count()) > 0 ? await link.getAttribute('href') : null;
      next = href ? new URL(href, page.url()).toString() : null;
    }
  }
  return out;
}
