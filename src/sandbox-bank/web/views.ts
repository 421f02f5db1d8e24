import type { SandboxMovement } from '../movements.js';
import type { WebChallenge } from './sessions.js';

/** The two layouts of the website: `compact` moves things around, as a bank's redesign does. */
export type WebLayout = 'classic' | 'compact';

/** Everything a page needs besides its own content. */
export interface Frame {
  /** The website's base path, ending without a slash (`/sandbox-bank/web`). */
  base: string;
  nonce: string;
  layout: WebLayout;
  /** Show the cookie banner (no consent cookie yet); it covers the page until accepted. */
  banner: boolean;
  /** Where the banner's form returns to. */
  path: string;
  loggedIn: boolean;
}

export interface AccountRow {
  id: string;
  name: string;
  iban: string;
  balance: string;
  currency: string;
}

/** A movement as the JSON API lists it. */
export type MovementRow = SandboxMovement;

export function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
}

const STYLE = `
body { font-family: system-ui, sans-serif; margin: 0; color: #1b1b1b; }
header { background: #0b5f4a; color: #fff; padding: .75rem 1rem; display: flex; justify-content: space-between; }
header a, header button { color: #fff; }
main { max-width: 52rem; margin: 0 auto; padding: 1rem; }
label { display: block; margin-top: .75rem; font-weight: 600; }
label.check { font-weight: normal; }
input[type=text], input[type=password] { font-size: 1rem; padding: .4rem; width: 18rem; max-width: 100%; }
button { margin-top: .75rem; font-size: 1rem; padding: .4rem 1rem; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .3rem .5rem; border-bottom: 1px solid #ddd; }
td.amount { text-align: right; }
.error { color: #a00; font-weight: 600; }
.notice { color: #0b5f4a; font-weight: 600; }
#cookie-banner { position: fixed; inset: 0; background: rgba(0,0,0,.55); display: flex; align-items: flex-end; z-index: 10; }
#cookie-banner div { background: #fff; width: 100%; padding: 1.5rem; }
.cards { list-style: none; padding: 0; }
form.inline { display: inline; }
.cards li { border: 1px solid #ccc; border-radius: .4rem; padding: .5rem; margin-bottom: .5rem; }
`;

/** A full page; no script at all: every step is a form post or a link, as on a classic bank site. */
export function page(frame: Frame, title: string, body: string): string {
  const { base, nonce } = frame;
  const nav = frame.loggedIn
    ? `<nav aria-label="Bank"><a href="${base}/accounts">Accounts</a> · <a href="${base}/profile">Profile</a>
<form class="inline" method="post" action="${base}/logout"><button type="submit">Log out</button></form></nav>`
    : '';
  const banner = frame.banner
    ? `<section id="cookie-banner" role="dialog" aria-label="Cookies"><div>
<p>We use cookies to keep you logged in and to improve this website.</p>
<form method="post" action="${base}/consent"><input type="hidden" name="back" value="${escapeHtml(frame.path)}">
<button type="submit">Accept all cookies</button></form></div></section>`
    : '';
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)} · Sandbox Bank</title>
<style nonce="${nonce}">${STYLE}</style>
</head>
<body class="layout-${frame.layout}">
<header><strong>Sandbox Bank</strong>${nav}</header>
<main>
<h1>${escapeHtml(title)}</h1>
${body}
</main>
${banner}
</body>
</html>`;
}

function message(error: string | null, notice: string | null = null): string {
  if (error !== null) return `<p class="error" role="alert">${escapeHtml(error)}</p>`;
  if (notice !== null) return `<p class="notice" role="status">${escapeHtml(notice)}</p>`;
  return '';
}

export function loginPage(frame: Frame, error: string | null, notice: string | null): string {
  // The compact layout renames the button and puts the password first: scripts must not depend on order.
  const username = `<label for="username">Username</label>
<input type="text" id="username" name="username" autocomplete="username" required>`;
  const password = `<label for="password">Password</label>
<input type="password" id="password" name="password" autocomplete="current-password" required>`;
  const fields = frame.layout === 'compact' ? `${password}\n${username}` : `${username}\n${password}`;
  return page(
    frame,
    'Log in',
    `${message(error, notice)}
<form method="post" action="${frame.base}/login">
${fields}
<button type="submit">${frame.layout === 'compact' ? 'Sign in' : 'Log in'}</button>
</form>`,
  );
}

export function codePage(frame: Frame, challenge: WebChallenge, error: string | null, notice: string | null): string {
  const resend = challenge.resendable
    ? `<form method="post" action="${frame.base}/otp/resend"><button type="submit">Send a new code</button></form>`
    : '';
  const size = challenge.length === null ? '' : ` maxlength="${challenge.length + 4}"`;
  return page(
    frame,
    'Verification code',
    `${message(error, notice)}
<p id="code-prompt">${escapeHtml(challenge.prompt)}</p>
<form method="post" action="${frame.base}/otp">
<label for="code">Code</label>
<input type="text" id="code" name="code" autocomplete="one-time-code" inputmode="${challenge.type === 'numeric' ? 'numeric' : 'text'}"${size} required
 data-length="${challenge.length ?? ''}" data-type="${challenge.type}">
<label class="check"><input type="checkbox" name="trust" value="1"> Trust this device</label>
<button type="submit">Verify</button>
</form>
${resend}`,
  );
}

export function approvalPage(frame: Frame, challenge: WebChallenge): string {
  return page(
    frame,
    'Approve on your phone',
    `<p id="approval-prompt">${escapeHtml(challenge.prompt)}</p>
<form method="get" action="${frame.base}/approval"><button type="submit">I have approved</button></form>`,
  );
}

export function accountsPage(frame: Frame, accounts: AccountRow[]): string {
  const rows = accounts
    .map(
      (
        a,
      ) => `<tr data-account-id="${escapeHtml(a.id)}"><td><a href="${frame.base}/accounts/${encodeURIComponent(a.id)}/movements">${escapeHtml(a.name)}</a></td>
<td class="iban">${escapeHtml(a.iban)}</td><td class="amount" data-currency="${escapeHtml(a.currency)}">${escapeHtml(a.balance)}</td></tr>`,
    )
    .join('\n');
  return page(
    frame,
    'Your accounts',
    `<table id="accounts"><thead><tr><th>Account</th><th>IBAN</th><th>Balance</th></tr></thead>
<tbody>${rows}</tbody></table>`,
  );
}

export function movementsPage(
  frame: Frame,
  account: AccountRow,
  movements: MovementRow[],
  paging: { page: number; pages: number; query: string },
): string {
  const list =
    frame.layout === 'compact'
      ? `<ul class="cards" id="movements">${movements
          .map(
            (
              m,
            ) => `<li data-id="${escapeHtml(m.id)}" data-booked="${escapeHtml(m.booked_at)}"><span class="name">${escapeHtml(m.name)}</span>
<span class="amount">${escapeHtml(m.amount)}</span> <span class="reference">${escapeHtml(m.reference)}</span></li>`,
          )
          .join('\n')}</ul>`
      : `<table id="movements"><thead><tr><th>Date</th><th>Name</th><th>Reference</th><th>Amount</th></tr></thead><tbody>
${movements
  .map(
    (
      m,
    ) => `<tr data-id="${escapeHtml(m.id)}"><td class="booked" data-booked="${escapeHtml(m.booked_at)}">${escapeHtml(m.booked_at.slice(0, 10))}</td>
<td class="name">${escapeHtml(m.name)}</td><td class="reference">${escapeHtml(m.reference)}</td><td class="amount">${escapeHtml(m.amount)}</td></tr>`,
  )
  .join('\n')}</tbody></table>`;
  const link = (n: number, label: string, rel: string) =>
    `<a rel="${rel}" href="${frame.base}/accounts/${encodeURIComponent(account.id)}/movements?${paging.query}&amp;page=${n}">${label}</a>`;
  const nav = [
    paging.page > 1 ? link(paging.page - 1, 'Previous', 'prev') : '',
    `<span id="page-info">Page ${paging.page} of ${paging.pages}</span>`,
    paging.page < paging.pages ? link(paging.page + 1, 'Next', 'next') : '',
  ].join(' ');
  return page(
    frame,
    account.name,
    `<p class="iban">${escapeHtml(account.iban)} · <span data-currency="${escapeHtml(account.currency)}">${escapeHtml(account.currency)}</span></p>
${list}
<nav aria-label="Pages">${nav}</nav>`,
  );
}

export function profilePage(frame: Frame, identity: { name: string; email: string; phone: string }): string {
  return page(
    frame,
    'Profile',
    `<dl id="profile"><dt>Name</dt><dd class="name">${escapeHtml(identity.name)}</dd>
<dt>Email</dt><dd class="email">${escapeHtml(identity.email)}</dd>
<dt>Phone</dt><dd class="phone">${escapeHtml(identity.phone)}</dd></dl>`,
  );
}

/** A failure page: the status code is the bank's (423 locked, 503 unavailable, 410 expired). */
export function problemPage(frame: Frame, title: string, text: string): string {
  return page(
    frame,
    title,
    `<p class="error" role="alert">${escapeHtml(text)}</p><p><a href="${frame.base}/login">Back to the login</a></p>`,
  );
}
