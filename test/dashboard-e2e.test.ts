/// <reference lib="dom" />
// (The callbacks given to page.evaluate run in the browser.)
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Secret, TOTP } from 'otpauth';
import type { Browser, BrowserContext, Locator, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DESKTOP,
  horizontalOverflow,
  launchChromium,
  newContext,
  overflowingElements,
  screenshot,
  signInPage,
} from './helpers/browser.js';
import { createSandboxAccount, latestCode, pendingRequest, scrape, sessionEnd } from './helpers/flows.js';
import { startTestServer, type TestServer } from './helpers/server.js';

/**
 * The dashboard in real Chromium against the real server: sign-in, the live code prompt, roles,
 * the sign-in rate limit, CSRF, two-factor sign-in, and the layout at phone and desktop widths (screenshots
 * go to test-results/screenshots; `npm run screenshots` takes the documentation's).
 */

let t: TestServer;
let browser: Browser;
let adminPassword: string;
const ADMIN = 'admin@otpilot.local';

beforeAll(async () => {
  t = await startTestServer();
  adminPassword = t.server.bootstrap!.adminPassword;
  browser = await launchChromium();
});
afterAll(async () => {
  await browser?.close();
  await t?.close();
});

/** The admin's signed-in cookies, from the first sign-in through the form (sign-ins are rate-limited). */
let adminState: Awaited<ReturnType<BrowserContext['storageState']>> | null = null;

/** A fresh browser profile signed in as the admin, on the accounts page. */
async function adminPage(viewport = DESKTOP): Promise<Page> {
  const context = await newContext(browser, viewport, adminState ?? undefined);
  const page = await context.newPage();
  if (adminState) {
    await page.goto(`${t.url}/app/`);
    await page.getByRole('navigation', { name: 'Main' }).waitFor();
  } else {
    await signInPage(page, t.url, ADMIN, adminPassword);
    adminState = await context.storageState();
  }
  return page;
}

const promptRegion = (page: Page) => page.getByRole('region', { name: 'Code requests' });

/** The prompt card of one account (its heading names the account). */
const promptFor = (page: Page, accountName: string): Locator =>
  promptRegion(page).getByRole('article', { name: `Code needed: ${accountName}` });

/** Creates a user through the dashboard API with the admin's bearer token. */
async function createUser(email: string, role: string, password: string): Promise<void> {
  const login = await fetch(`${t.url}/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email: ADMIN, password: adminPassword }),
  });
  const { token } = (await login.json()) as { token: string };
  const created = await fetch(`${t.url}/users`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ email, role, password }),
  });
  expect(created.status).toBe(201);
}

/** The code on the sandbox bank's phone page, read the way a person would: from the page. */
async function codeFromPhonePage(page: Page, username: string): Promise<{ code: string; sms: string }> {
  const phone = await page.context().newPage();
  await phone.goto(`${t.url}/sandbox-bank/phone/${encodeURIComponent(username)}/inbox`);
  const first = phone.locator('#messages li').first();
  await first.locator('.code').waitFor();
  const code = (await first.locator('.code').textContent())!.trim();
  const sms = (await first.textContent())!;
  await phone.close();
  return { code, sms };
}

describe('dashboard in Chromium', { timeout: 90_000 }, () => {
  it('signs in, creates a sandbox account, scrapes, and completes the login with the code from the phone page', async () => {
    const page = await adminPage();
    await screenshot(page, 'accounts-desktop');
    const username = `otp+e2e${process.pid}`;
    await page.getByRole('button', { name: 'Add account' }).click();
    await page.getByLabel('Name', { exact: true }).fill('Operating account');
    await page.getByLabel('Username').fill(username);
    await page.getByLabel('Password', { exact: true }).fill('secret');
    await page.getByRole('button', { name: 'Create account' }).click();
    await page.getByRole('heading', { name: 'Operating account', level: 1 }).waitFor();
    const accountId = page.url().split('/').pop()!;

    // A marker on the page: a reload would wipe it.
    await page.evaluate(() => {
      (window as unknown as { stayed: boolean }).stayed = true;
    });
    await page.getByRole('button', { name: 'Scrape now' }).click();
    // The prompt appears without a reload, fed by the event stream, and takes the focus.
    const prompt = promptFor(page, 'Operating account');
    const input = prompt.getByLabel(/code/);
    await input.waitFor();
    expect(await page.evaluate(() => (window as unknown as { stayed?: boolean }).stayed)).toBe(true);
    // The countdown runs.
    const timer = prompt.getByRole('timer');
    const seconds = async () => {
      const [, m, s] = /(\d+):(\d\d)/.exec((await timer.textContent()) ?? '') ?? [];
      return Number(m) * 60 + Number(s);
    };
    const first = await seconds();
    await expect.poll(seconds).toBeLessThan(first);
    await expect.poll(() => input.evaluate((el) => el === document.activeElement)).toBe(true);
    await expect.poll(() => page.title()).toBe('(1) Code needed · otpilot');
    const request = await pendingRequest(t.api, accountId);
    const left = request.max_attempts - request.attempts;
    expect(await prompt.textContent()).toContain(request.descriptor.prompt);
    expect(await prompt.textContent()).toMatch(
      new RegExp(`6-digit code.*${left} attempts? left.*expires in \\d:\\d\\d`),
    );
    expect(await input.getAttribute('inputmode')).toBe('numeric');
    expect(await input.getAttribute('maxlength')).toBe('6');
    await screenshot(page, 'prompt-desktop');

    const { code } = await codeFromPhonePage(page, username);
    // Typing the sixth digit submits: no button press needed.
    await input.pressSequentially(code);
    await prompt.getByText('Accepted: the bank let the login continue.').waitFor();
    await expect.poll(() => page.title()).toBe('otpilot');
    const sessions = await t.api.get(`/v1/accounts/${accountId}/sessions`);
    expect((await sessionEnd(t.api, sessions.body.data[0].id)).state).toBe('succeeded');
    // The account page updates by itself: the session shows as succeeded.
    await page.getByRole('navigation', { name: 'Account sections' }).getByRole('link', { name: 'Sessions' }).click();
    await page.getByRole('region', { name: 'Sessions' }).getByText('succeeded').first().waitFor();
    await screenshot(page, 'account-desktop');
    await page.context().close();
  });

  it('says a wrong code was rejected, asks again, and takes a pasted SMS', async () => {
    const account = await createSandboxAccount(t.api, 'otp');
    const name = `Test ${account.username}`;
    const page = await adminPage();
    // Any page shows the prompt: here the webhooks page.
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Webhooks' }).click();
    await page.getByRole('heading', { name: 'Webhooks', level: 1 }).waitFor();
    await scrape(t.api, account.id);
    const prompt = promptFor(page, name);
    const input = prompt.getByLabel(/code/);
    await input.waitFor();
    const right = await latestCode(t.api, account.username);
    const wrong = right.replace(/.$/, (d) => String((Number(d) + 1) % 10));
    const { max_attempts } = await pendingRequest(t.api, account.id);
    await input.pressSequentially(wrong);
    const left = max_attempts - 1;
    await prompt
      .getByText(`The bank rejected that code. Check it and try again (${left} attempt${left === 1 ? '' : 's'} left).`)
      .waitFor();
    expect(await input.inputValue()).toBe('');
    await expect.poll(() => input.evaluate((el) => el === document.activeElement)).toBe(true);

    // A whole SMS pasted into the box: the code is taken out of it and submitted.
    const { sms } = await codeFromPhonePage(page, account.username);
    await input.evaluate((el, text) => {
      const data = new DataTransfer();
      data.setData('text', text);
      el.dispatchEvent(new ClipboardEvent('paste', { clipboardData: data, bubbles: true, cancelable: true }));
    }, sms);
    await prompt.getByText('Accepted: the bank let the login continue.').waitFor();
    const request = (await t.api.get(`/v1/assistance-requests?account_id=${account.id}`)).body.data[0];
    // attempts counts the codes the bank refused.
    expect(request).toMatchObject({ state: 'fulfilled', attempts: 1 });
    await page.context().close();
  });

  it('shows the expiry when nobody answers in time', async () => {
    const account = await createSandboxAccount(t.api, 'otp', { assist_timeout_seconds: 2 });
    const page = await adminPage();
    await scrape(t.api, account.id);
    const prompt = promptFor(page, `Test ${account.username}`);
    await prompt.getByLabel(/code/).waitFor();
    await prompt.getByText(/Expired: the code window closed/).waitFor();
    await expect
      .poll(async () => (await t.api.get(`/v1/accounts/${account.id}/otp`)).body.assistance_request)
      .toBeNull();
    await page.context().close();
  });

  it('shows a viewer the prompt but no way to answer it, and the API refuses the viewer too', async () => {
    await createUser('viewer@example.org', 'viewer', 'viewer-password-1');
    const account = await createSandboxAccount(t.api, 'otp');
    const context = await newContext(browser);
    const page = await context.newPage();
    await signInPage(page, t.url, 'viewer@example.org', 'viewer-password-1');
    const sessionId = await scrape(t.api, account.id);
    const prompt = promptFor(page, `Test ${account.username}`);
    await prompt.getByText(/Viewers can see prompts but not answer them/).waitFor();
    expect(await prompt.getByRole('textbox').count()).toBe(0);
    // Not even by hand from the signed-in page (same origin, the viewer's cookie).
    const request = await pendingRequest(t.api, account.id);
    const status = await page.evaluate(
      async ({ id, requestId }) =>
        (
          await fetch(`/accounts/${id}/otp`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ code: '123456', request_id: requestId }),
          })
        ).status,
      { id: account.id, requestId: request.id },
    );
    expect(status).toBe(403);
    expect((await t.api.get(`/v1/accounts/${account.id}/otp`)).body.assistance_request.attempts).toBe(0);
    // Withdrawn: the viewer's prompt says so and goes away.
    expect((await t.api.post(`/v1/sessions/${sessionId}/cancel`)).status).toBe(202);
    await prompt.getByText(/Withdrawn/).waitFor();
    await context.close();
  });

  it('rate-limits sign-in and says so on the form', async () => {
    const context = await newContext(browser);
    const page = await context.newPage();
    await page.goto(`${t.url}/app/`);
    await page.getByLabel('Email').fill('someone@example.org');
    await page.getByLabel('Password').fill('not-the-password');
    const alert = page.getByRole('alert');
    for (let i = 0; i < 10; i++) {
      await page.getByRole('button', { name: 'Sign in' }).click();
      await alert.getByText('the email or password is wrong').waitFor();
      await page.evaluate(() => {
        document.querySelector('[role=alert]')!.textContent = '';
      });
    }
    await page.getByRole('button', { name: 'Sign in' }).click();
    await alert.getByText(/Too many attempts/).waitFor();
    await context.close();
  });

  it('refuses a cross-site request that rides on the session cookie', async () => {
    const account = await createSandboxAccount(t.api, 'alice');
    // Another origin (another port on the same host: same site, so the cookie does travel).
    const evil: Server = createServer((_request, response) => {
      response.setHeader('content-type', 'text/html');
      response.end(
        `<form id="f" method="POST" action="${t.url}/accounts/${account.id}/scrape"></form><script>document.getElementById('f').submit()</script>`,
      );
    });
    await new Promise<void>((resolve) => evil.listen(0, '127.0.0.1', resolve));
    const page = await adminPage();
    await page.goto(`http://127.0.0.1:${(evil.address() as AddressInfo).port}/`);
    await page.waitForURL(`${t.url}/accounts/${account.id}/scrape`);
    const answer = JSON.parse((await page.locator('body').textContent())!);
    expect(answer.error).toMatchObject({ code: 'FORBIDDEN' });
    expect(answer.error.message).toMatch(/cross-site/);
    expect((await t.api.get(`/v1/accounts/${account.id}/sessions`)).body.data).toEqual([]);
    evil.close();
    await page.context().close();
  });

  it('enrolls two-factor sign-in with the QR page, then asks for the code at sign-in', async () => {
    await createUser('secure@example.org', 'operator', 'secure-password-1');
    const context = await newContext(browser);
    const page = await context.newPage();
    await signInPage(page, t.url, 'secure@example.org', 'secure-password-1');
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Settings' }).click();
    await page.getByLabel('Password').fill('secure-password-1');
    await page.getByRole('button', { name: 'Set up two-factor sign-in' }).click();
    await page.getByRole('img', { name: /QR code/ }).waitFor();
    const secret = (await page.locator('code').first().textContent())!.trim();
    const totp = new TOTP({ secret: Secret.fromBase32(secret) });
    await page.getByLabel('Authenticator code').fill(totp.generate());
    await page.getByRole('button', { name: 'Turn on' }).click();
    const codes = (await page.getByRole('status').filter({ hasText: 'Backup codes' }).locator('code').textContent())!;
    expect(codes.split('\n')).toHaveLength(10);
    await page.getByRole('button', { name: 'Done' }).click();
    await page.getByText(/Signing in asks for a code/).waitFor();

    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('Email').fill('secure@example.org');
    await page.getByLabel('Password').fill('secure-password-1');
    await page.getByRole('button', { name: 'Sign in' }).click();
    // The password was right; now the second factor (a backup code works once).
    await page.getByLabel(/Authentication code/).fill(codes.split('\n')[0]!);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('navigation', { name: 'Main' }).waitFor();
    await context.close();
  });
});

describe('layout at 320, 375 and 1280 px', { timeout: 180_000 }, () => {
  it('never scrolls sideways, on any page or in the reconnect widget', async () => {
    // Something on every page: a webhook endpoint, an account with movements, a pending prompt, a reconnect.
    const endpoint = await t.api.post('/v1/webhooks', { url: `${t.url}/health`, description: 'Accounting system' });
    expect(endpoint.status).toBe(201);
    const busy = await createSandboxAccount(t.api, 'alice');
    await sessionEnd(t.api, await scrape(t.api, busy.id));
    const waiting = await createSandboxAccount(t.api, 'otp');
    const sessionId = await scrape(t.api, waiting.id);
    await pendingRequest(t.api, waiting.id);
    const corporate = await createSandboxAccount(t.api, 'corporate');
    const call = await t.api.get(`/v1/accounts/${corporate.id}/balances?refresh=true`);
    expect(call.body.status).toBe('RECONNECT_REQUIRED');
    const token = await t.api.post('/v1/app-tokens', { name: 'Demo', allowed_origins: [t.url] });
    const paths = [
      '/app/',
      '/app/codes',
      '/app/keys',
      '/app/webhooks',
      `/app/webhooks/${endpoint.body.id}`,
      '/app/users',
      '/app/audit',
      '/app/settings',
      ...['', '/movements', '/sessions', '/settings'].map((tab) => `/app/accounts/${busy.id}${tab}`),
    ];
    for (const width of [320, 375, 1280]) {
      const context = await newContext(browser, { width, height: 800 }, adminState ?? undefined);
      const page = await context.newPage();
      const errors: string[] = [];
      page.on('console', (message) => message.type() === 'error' && errors.push(message.text()));
      await page.goto(`${t.url}/app/`);
      if (!adminState) {
        await signInPage(page, t.url, ADMIN, adminPassword);
        adminState = await context.storageState();
      }
      for (const path of paths) {
        await page.goto(`${t.url}${path}`);
        await page.getByRole('navigation', { name: 'Main' }).waitFor();
        await page.getByRole('heading', { level: 1 }).first().waitFor();
        await page.getByText('Loading…').first().waitFor({ state: 'detached' });
        await promptFor(page, `Test ${waiting.username}`).waitFor();
        expect(await horizontalOverflow(page), `${path} at ${width} px: ${await overflowingElements(page)}`).toBe(0);
      }
      // The docked prompt covers nothing: at 1280 px it sits beside the accounts table, whose every column shows.
      await page.goto(`${t.url}/app/`);
      const table = page.getByRole('region', { name: 'Bank logins' }).getByRole('table');
      await table.waitFor();
      const prompts = await promptRegion(page).boundingBox();
      if (width === 1280) {
        const nextRun = await table.getByRole('columnheader', { name: 'Next run' }).boundingBox();
        expect(nextRun).not.toBeNull();
        expect(nextRun!.x + nextRun!.width).toBeLessThanOrEqual(prompts!.x);
      }
      const tableBox = (await table.boundingBox())!;
      const overlap =
        prompts!.x < tableBox.x + tableBox.width &&
        tableBox.x < prompts!.x + prompts!.width &&
        prompts!.y < tableBox.y + tableBox.height &&
        tableBox.y < prompts!.y + prompts!.height;
      expect(overlap, `prompt over the table at ${width} px`).toBe(false);

      await page.goto(
        `${t.url}/widget-demo?app_token=${token.body.token}&reconnect_id=${call.body.payload.reconnect_id}`,
      );
      await page.getByRole('button', { name: 'Reconnect' }).click();
      const dialog = page.getByRole('dialog');
      await dialog.getByLabel('Verification code').waitFor();
      const box = (await dialog.boundingBox())!;
      expect(box.x, `widget at ${width} px`).toBeGreaterThanOrEqual(0);
      expect(box.x + box.width, `widget at ${width} px`).toBeLessThanOrEqual(width);
      // Nothing inside the dialog is wider than the dialog (the demo page around it is the integrator's).
      const inner = await dialog.evaluate((el) =>
        Math.max(...[...el.querySelectorAll('*')].map((child) => child.getBoundingClientRect().right)),
      );
      expect(inner, `widget content at ${width} px`).toBeLessThanOrEqual(box.x + box.width);
      // The favicon is served: no 404 in the demo page's console.
      expect(errors).toEqual([]);
      await context.close();
    }
    await t.api.post(`/v1/sessions/${sessionId}/cancel`);
    await t.api.post(`/v1/sessions/${(await t.api.get(`/v1/accounts/${corporate.id}/status`)).body.session.id}/cancel`);
  });
});

describe('dashboard pages in Chromium', { timeout: 90_000 }, () => {
  it('shows an approval request, with nothing to type, until the bank app approves it', async () => {
    const account = await createSandboxAccount(t.api, 'approve');
    const page = await adminPage();
    await scrape(t.api, account.id);
    const prompt = promptRegion(page).getByRole('article', { name: `Approval needed: Test ${account.username}` });
    await prompt.getByText(/approve the login in the bank's app/).waitFor();
    expect(await prompt.getByRole('textbox').count()).toBe(0);
    const waiting = (await t.api.get('/v1/assistance-requests?state=pending')).body.data.length;
    await expect.poll(() => page.title()).toBe(`(${waiting}) Code needed · otpilot`);
    const approved = await t.api.raw(`/sandbox-bank/phone/${encodeURIComponent(account.username)}/approve`, {
      method: 'POST',
    });
    expect(approved.status).toBe(200);
    await prompt.getByText('Accepted: the bank let the login continue.').waitFor();
    await page.context().close();
  });

  it('chimes and notifies for a new prompt, and stays quiet once both are turned off', async () => {
    const context = await newContext(browser, DESKTOP, adminState ?? undefined);
    // Stand-ins for the browser's notification and audio APIs that count what the app asks of them.
    await context.addInitScript(() => {
      const w = window as unknown as Record<string, any>;
      w.alerts = { notifications: [] as string[], tones: 0 };
      w.Notification = class {
        static permission = 'granted';
        static requestPermission = async () => 'granted';
        onclick: (() => void) | null = null;
        constructor(title: string) {
          w.alerts.notifications.push(title);
        }
        close() {}
      };
      w.AudioContext = class {
        currentTime = 0;
        destination = {};
        resume = async () => {};
        createOscillator() {
          w.alerts.tones++;
          return { frequency: {}, connect: (node: unknown) => node, start() {}, stop() {} };
        }
        createGain() {
          const gain = { setValueAtTime() {}, exponentialRampToValueAtTime() {} };
          return { gain, connect: (node: unknown) => node };
        }
      };
    });
    const page = await context.newPage();
    await page.goto(`${t.url}/app/`);
    await page.getByRole('navigation', { name: 'Main' }).waitFor();
    const alerts = () => page.evaluate(() => (window as unknown as { alerts: any }).alerts);

    const first = await createSandboxAccount(t.api, 'otp');
    const firstSession = await scrape(t.api, first.id);
    await promptFor(page, `Test ${first.username}`).getByLabel(/code/).waitFor();
    // Other tests' prompts may be open too: each prompt gets one notification and one two-tone chime.
    await expect.poll(async () => (await alerts()).notifications).toContain(`Code needed: Test ${first.username}`);
    const before = await alerts();
    expect(before.notifications.filter((n: string) => n.endsWith(first.username))).toHaveLength(1);
    expect(before.tones).toBe(2 * before.notifications.length);

    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Settings' }).click();
    await page.getByLabel('Play a sound when a code is needed').uncheck();
    await page.getByLabel('Show a desktop notification when a code is needed').uncheck();
    await t.api.post(`/v1/sessions/${firstSession}/cancel`);
    const second = await createSandboxAccount(t.api, 'otp');
    const secondSession = await scrape(t.api, second.id);
    await promptFor(page, `Test ${second.username}`).getByLabel(/code/).waitFor();
    expect(await alerts()).toEqual(before);
    await t.api.post(`/v1/sessions/${secondSession}/cancel`);
    await context.close();
  });

  it('edits settings, creates an API key shown once, and deletes an account after its name is typed', async () => {
    const account = await createSandboxAccount(t.api, 'alice');
    const page = await adminPage();
    await page.goto(`${t.url}/app/accounts/${account.id}/settings`);
    await page.getByLabel('Schedule').fill('every 6h');
    await page.getByLabel('Phone number that receives the codes').fill('+31 6 1234 5678');
    await page.getByRole('button', { name: 'Save settings' }).click();
    await page.getByText('Settings saved.').waitFor();
    expect((await t.api.get(`/v1/accounts/${account.id}/config`)).body).toMatchObject({
      schedule: 'every 6h',
      otp_phone: '+31612345678',
    });

    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'API keys' }).click();
    await page.getByRole('region', { name: 'Create a key' }).getByLabel('Name').fill('Relay key');
    await page.getByRole('button', { name: 'Create key' }).click();
    const shown = page.getByRole('status').filter({ hasText: 'Your new API key' });
    const key = (await shown.locator('code').textContent())!.trim();
    expect(key).toMatch(/^otpk_/);
    expect((await t.api.get(`/v1/accounts/${account.id}/status`, key)).status).toBe(200);
    await shown.getByRole('button', { name: 'Done' }).click();
    expect(await page.getByText(key).count()).toBe(0);

    await page.goto(`${t.url}/app/accounts/${account.id}`);
    await page.getByRole('button', { name: 'Delete' }).click();
    const confirm = page.getByRole('button', { name: 'Delete for good' });
    await page.getByLabel('Account name').fill('not the name');
    expect(await confirm.isDisabled()).toBe(true);
    await page.getByLabel('Account name').fill(`Test ${account.username}`);
    await confirm.click();
    await page.getByRole('heading', { name: 'Accounts', level: 1 }).waitFor();
    expect((await t.api.get(`/v1/accounts/${account.id}`)).status).toBe(404);
    await page.context().close();
  });

  it('moves the focus to the newest prompt unless a code is being typed in another, and announces it', async () => {
    const page = await adminPage();
    const first = await createSandboxAccount(t.api, 'otp');
    const firstSession = await scrape(t.api, first.id);
    const firstInput = promptFor(page, `Test ${first.username}`).getByLabel(/code/);
    await firstInput.waitFor();
    await expect.poll(() => firstInput.evaluate((el) => el === document.activeElement)).toBe(true);
    const announced = page.locator('[aria-live="assertive"]');
    await expect.poll(() => announced.textContent()).toContain(`Code needed: Test ${first.username}`);

    // A second prompt while the first is untouched: the newest takes the focus and is announced.
    const second = await createSandboxAccount(t.api, 'otp');
    const secondSession = await scrape(t.api, second.id);
    const secondInput = promptFor(page, `Test ${second.username}`).getByLabel(/code/);
    await secondInput.waitFor();
    await expect.poll(() => secondInput.evaluate((el) => el === document.activeElement)).toBe(true);
    await expect.poll(() => announced.textContent()).toContain(`Code needed: Test ${second.username}`);

    // Half a code typed in the second: a third prompt is announced but leaves the focus where the typing is.
    await secondInput.pressSequentially('12');
    const third = await createSandboxAccount(t.api, 'otp');
    const thirdSession = await scrape(t.api, third.id);
    await promptFor(page, `Test ${third.username}`).getByLabel(/code/).waitFor();
    await expect.poll(() => announced.textContent()).toContain(`Code needed: Test ${third.username}`);
    expect(await secondInput.evaluate((el) => el === document.activeElement)).toBe(true);
    expect(await secondInput.inputValue()).toBe('12');
    for (const id of [firstSession, secondSession, thirdSession]) await t.api.post(`/v1/sessions/${id}/cancel`);
    await page.context().close();
  });

  it('shows why an account is blocked and unblocks it with the one action it needs', async () => {
    const account = await createSandboxAccount(t.api, 'alice', {}, 'wrong');
    expect((await sessionEnd(t.api, await scrape(t.api, account.id))).state).toBe('failed');
    const page = await adminPage();
    // The list says blocked instead of a next run.
    const row = page.getByRole('row').filter({ hasText: `Test ${account.username}` });
    await row.getByText('Blocked: invalid credentials').waitFor();
    await row.getByRole('link', { name: `Test ${account.username}` }).click();
    const blocked = page.getByRole('region', { name: /Blocked since/ });
    await blocked.getByText('The bank refused the username or password.').waitFor();
    expect(await page.getByText('Next run').count()).toBe(0);
    await blocked.getByRole('link', { name: 'Enter the new password' }).click();
    await page.getByLabel('Username').fill(account.username);
    await page.getByLabel('Password', { exact: true }).fill('secret');
    await page.getByRole('button', { name: 'Save settings' }).click();
    // Saving the new password lifts the block and runs the login again.
    await blocked.waitFor({ state: 'detached' });
    await expect
      .poll(async () => (await t.api.get(`/v1/accounts/${account.id}`)).body.blocked_at, { timeout: 15_000 })
      .toBeNull();
    const sessions = (await t.api.get(`/v1/accounts/${account.id}/sessions`)).body.data;
    expect((await sessionEnd(t.api, sessions[0].id)).state).toBe('succeeded');
    await page.context().close();
  });

  it('shows a failed browser login’s screenshot and masked page in the sessions tab', async () => {
    const created = await t.api.post('/v1/accounts', {
      bank_id: 'sandbox-web',
      name: 'Web locked',
      credentials: { username: `locked+dash${process.pid}`, password: 'pw-Dashboard-Secret' },
    });
    expect(created.status).toBe(201);
    expect((await sessionEnd(t.api, await scrape(t.api, created.body.id), 60_000)).state).toBe('failed');
    const page = await adminPage();
    await page.goto(`${t.url}/app/accounts/${created.body.id}/sessions`);
    await page.getByText('What the browser saw').click();
    const shot = page.getByRole('img', { name: 'The page when the login failed (typed values masked)' });
    await shot.waitFor();
    await expect
      .poll(() => shot.evaluate((img: HTMLImageElement) => img.complete && img.naturalWidth))
      .toBeGreaterThan(0);
    await page.getByText('Page HTML (typed values masked)').click();
    await page.getByText('Your account is locked').first().waitFor();
    expect(await page.content()).not.toContain('pw-Dashboard-Secret');
    await page.context().close();
  });

  it('filters, pages and exports movements; draws balances and health; speaks Spanish on request', async () => {
    const account = await createSandboxAccount(t.api, 'alice');
    await sessionEnd(t.api, await scrape(t.api, account.id));
    const page = await adminPage();
    await page.goto(`${t.url}/app/accounts/${account.id}`);
    // Overview: one chart per bank account and the health strip, as labelled SVG.
    const balances = page.getByRole('region', { name: 'Balances' });
    await expect.poll(() => balances.locator('svg[aria-label^="Balance of"]').count()).toBe(2);
    await page
      .getByRole('region', { name: 'Login health' })
      .getByText(/1 succeeded, 0 failed/)
      .waitFor();

    await page.getByRole('navigation', { name: 'Account sections' }).getByRole('link', { name: 'Movements' }).click();
    const table = page.getByRole('region', { name: 'Movements' }).getByRole('table');
    await table.waitFor();
    expect(await table.getByRole('row').count()).toBe(51);
    await page.getByRole('button', { name: 'Next page' }).click();
    await page.getByText('Page 2').first().waitFor();
    const all = (await t.api.get(`/v1/accounts/${account.id}/movements?limit=60`)).body.data as any[];
    await table.getByText(all[55].name).first().waitFor();

    const word = all[0].reference as string;
    await page.getByLabel('Text').fill(word);
    await page.getByLabel('Amount from').fill('10');
    await page.getByRole('button', { name: 'Apply' }).click();
    await page.getByText('Page 2').first().waitFor({ state: 'detached' });
    const expected = (
      await t.api.get(`/v1/accounts/${account.id}/movements?limit=50&q=${encodeURIComponent(word)}&min_amount=10`)
    ).body.data as any[];
    await expect.poll(() => table.getByRole('row').count()).toBe(expected.length + 1);
    const csv = page.getByRole('link', { name: 'Export CSV' });
    const [download] = await Promise.all([page.waitForEvent('download'), csv.click()]);
    const text = await (await download.createReadStream()).toArray();
    const lines = Buffer.concat(text).toString('utf8').trimEnd().split('\r\n');
    expect(lines.length - 1).toBeGreaterThanOrEqual(expected.length);
    expect(lines.slice(1).every((line) => line.includes(word))).toBe(true);

    // Spanish: the switch changes the words and Intl the numbers.
    await page.getByLabel('Language').selectOption('es');
    await page.getByRole('navigation', { name: 'Principal' }).getByRole('link', { name: 'Cuentas' }).waitFor();
    const tabla = page.getByRole('region', { name: 'Movimientos' }).getByRole('table');
    await tabla.getByRole('columnheader', { name: 'Importe' }).waitFor();
    expect(await tabla.getByRole('cell').filter({ hasText: /€/ }).first().textContent()).toMatch(/^-?[\d.]+,\d\d\s€$/);
    await page.getByLabel('Idioma').selectOption('en');
    await page.context().close();
  });

  it('lists every code request with its source, time to code, verdict and who answered', async () => {
    const account = await createSandboxAccount(t.api, 'otp');
    const sessionId = await scrape(t.api, account.id);
    const request = await pendingRequest(t.api, account.id);
    const code = await latestCode(t.api, account.username);
    expect((await t.api.post(`/v1/accounts/${account.id}/otp`, { code, request_id: request.id })).status).toBe(202);
    await sessionEnd(t.api, sessionId);
    const page = await adminPage();
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Codes' }).click();
    const row = page
      .getByRole('region', { name: 'All requests' })
      .getByRole('row')
      .filter({ hasText: `Test ${account.username}` });
    await row.getByText('accepted').waitFor();
    expect(await row.textContent()).toMatch(/api/);
    expect(await row.textContent()).toMatch(/\d+\s?s/);
    await page
      .getByRole('region', { name: /Median time to code/ })
      .locator('svg[aria-label^="Median time to code, per account"]')
      .waitFor();
    await page.context().close();
  });
});
