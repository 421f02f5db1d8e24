import { BEHAVIOURS } from './users.js';

/** Pages carry their own policy: inline scripts run only with this response's nonce, data goes to this origin only. */
export function contentSecurityPolicy(nonce: string): string {
  return `default-src 'none'; script-src 'nonce-${nonce}'; style-src 'nonce-${nonce}'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'`;
}

function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
}

/** A JSON literal that is safe inside a <script> element. */
function scriptJson(value: unknown): string {
  return JSON.stringify(value).replace(/</g, '\\u003c');
}

const STYLE = `
body { font-family: system-ui, sans-serif; margin: 0 auto; max-width: 52rem; padding: 1rem; color: #1b1b1b; }
h1 { color: #0b5f4a; }
label { display: block; margin-top: .75rem; font-weight: 600; }
input { font-size: 1rem; padding: .4rem; width: 18rem; max-width: 100%; }
button { margin-top: .75rem; font-size: 1rem; padding: .4rem 1rem; }
table { border-collapse: collapse; width: 100%; margin: .5rem 0 1.5rem; }
th, td { text-align: left; padding: .3rem .5rem; border-bottom: 1px solid #ddd; }
td.amount { text-align: right; font-variant-numeric: tabular-nums; }
.status { min-height: 1.5rem; font-weight: 600; }
.code { font-size: 2.5rem; letter-spacing: .3rem; font-family: ui-monospace, monospace; margin: .25rem 0; }
ol.messages { list-style: none; padding: 0; }
ol.messages li { border: 1px solid #ccc; border-radius: .5rem; padding: .75rem; margin-bottom: .75rem; }
.meta { color: #555; font-size: .9rem; }
[hidden] { display: none !important; }
`;

function page(title: string, nonce: string, body: string, script: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style nonce="${nonce}">${STYLE}</style>
</head>
<body>
${body}
<script nonce="${nonce}">
${script}
</script>
</body>
</html>`;
}

/** The bank's web portal: login, code or approval, then accounts and recent transactions. */
export function portalPage(prefix: string, nonce: string): string {
  const users = BEHAVIOURS.map(
    (b) =>
      `<li><code>${b.username}</code>: ${escapeHtml(b.description)} <a href="${escapeHtml(prefix)}/phone/${b.username}/inbox">phone</a></li>`,
  ).join('\n');
  const body = `<main>
<h1>Sandbox Bank</h1>
<p>A simulated bank for testing. Any password works except <code>wrong</code>.</p>
<p id="status" class="status" role="status" aria-live="polite"></p>
<section id="login-section" aria-labelledby="login-heading">
<h2 id="login-heading">Log in</h2>
<form id="login-form">
<label for="username">Username</label>
<input id="username" name="username" autocomplete="username" required>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">Log in</button>
</form>
</section>
<section id="code-section" aria-labelledby="code-heading" hidden>
<h2 id="code-heading">Verification code</h2>
<p id="code-prompt"></p>
<p><a id="inbox-link" target="_blank" rel="noopener">Open the phone inbox</a></p>
<form id="code-form">
<label for="code">Code</label>
<input id="code" name="code" autocomplete="one-time-code" required>
<button type="submit">Verify</button>
<button id="resend" type="button">Send a new code</button>
</form>
</section>
<section id="approval-section" aria-labelledby="approval-heading" hidden>
<h2 id="approval-heading">Approve on your phone</h2>
<p id="approval-prompt"></p>
<p><a id="approval-link" target="_blank" rel="noopener">Open the phone to approve</a></p>
</section>
<section id="accounts-section" aria-labelledby="accounts-heading" hidden>
<h2 id="accounts-heading">Your accounts</h2>
<div id="accounts"></div>
<button id="logout" type="button">Log out</button>
</section>
<section aria-labelledby="users-heading">
<h2 id="users-heading">Sandbox users</h2>
<p>The username fixes the behaviour; anything after a <code>+</code> makes a distinct user (<code>otp+42</code>).</p>
<ul>
${users}
</ul>
</section>
</main>`;
  const script = `
const base = ${scriptJson(prefix)};
const $ = (id) => document.getElementById(id);
let challengeId = null;
let pollTimer = null;
const say = (text) => { $('status').textContent = text; };
const show = (id) => {
  for (const s of ['login-section', 'code-section', 'approval-section', 'accounts-section']) $(s).hidden = s !== id;
};
async function api(method, path, body, token) {
  const headers = {};
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (token) headers.authorization = 'Bearer ' + token;
  const res = await fetch(base + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  return { status: res.status, body: await res.json() };
}
const problem = (r) => (r.body && (r.body.message || r.body.error)) || 'HTTP ' + r.status;
const inbox = (username) => base + '/phone/' + encodeURIComponent(username) + '/inbox';
function cell(row, text, cls) {
  const td = document.createElement('td');
  td.textContent = text;
  if (cls) td.className = cls;
  row.appendChild(td);
}
function table(caption, headings, rows) {
  const t = document.createElement('table');
  const c = document.createElement('caption');
  c.textContent = caption;
  t.appendChild(c);
  const head = document.createElement('tr');
  for (const h of headings) { const th = document.createElement('th'); th.scope = 'col'; th.textContent = h; head.appendChild(th); }
  t.appendChild(head);
  for (const r of rows) t.appendChild(r);
  return t;
}
async function loggedIn(token) {
  challengeId = null;
  say('Logged in.');
  show('accounts-section');
  const box = $('accounts');
  box.textContent = '';
  const accounts = await api('GET', '/api/accounts', undefined, token);
  if (accounts.status !== 200) return say(problem(accounts));
  const rows = accounts.body.map((a) => {
    const tr = document.createElement('tr');
    cell(tr, a.name); cell(tr, a.iban); cell(tr, a.balance.current + ' ' + a.currency, 'amount');
    return tr;
  });
  box.appendChild(table('Accounts', ['Account', 'IBAN', 'Balance'], rows));
  const to = new Date().toISOString().slice(0, 10);
  const from = new Date(Date.now() - 14 * 86400000).toISOString().slice(0, 10);
  for (const a of accounts.body) {
    const tx = await api('GET', '/api/accounts/' + encodeURIComponent(a.id) + '/transactions?from=' + from + '&to=' + to, undefined, token);
    if (tx.status !== 200) continue;
    const txRows = tx.body.slice(0, 10).map((m) => {
      const tr = document.createElement('tr');
      cell(tr, m.booked_at.slice(0, 16).replace('T', ' ')); cell(tr, m.name); cell(tr, m.reference || ''); cell(tr, m.amount, 'amount');
      return tr;
    });
    box.appendChild(table('Latest transactions, ' + a.name, ['Booked', 'Name', 'Reference', 'Amount'], txRows));
  }
}
function answered(r, username) {
  if (r.status !== 200) { show('login-section'); return say(problem(r)); }
  const b = r.body;
  if (b.status === 'ok') return loggedIn(b.session_token);
  if (b.status === 'code_required' || b.status === 'totp_required') {
    challengeId = b.challenge_id;
    $('code-prompt').textContent = b.code.prompt + ' (' + b.code.length + ' characters, ' + b.code.attempts_left + ' attempts left)';
    $('inbox-link').href = inbox(username);
    $('inbox-link').parentElement.hidden = b.status === 'totp_required';
    $('resend').hidden = b.status === 'totp_required';
    $('code').value = '';
    show('code-section');
    say('');
    $('code').focus();
    return;
  }
  if (b.status === 'approval_required') {
    challengeId = b.challenge_id;
    $('approval-prompt').textContent = b.prompt;
    $('approval-link').href = inbox(username);
    show('approval-section');
    say('Waiting for approval...');
    pollTimer = setInterval(async () => {
      const s = await api('GET', '/api/challenges/' + encodeURIComponent(challengeId));
      if (s.status === 200 && s.body.status === 'pending') return;
      clearInterval(pollTimer);
      if (s.status === 200 && s.body.status === 'ok') return loggedIn(s.body.session_token);
      show('login-section');
      say(s.status === 200 ? 'The approval is ' + s.body.status + '.' : problem(s));
    }, 1000);
    return;
  }
  say('Unexpected answer: ' + b.status);
}
$('login-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const username = $('username').value;
  say('Logging in...');
  answered(await api('POST', '/api/login', { username, password: $('password').value }), username);
});
$('code-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const r = await api('POST', '/api/challenges/' + encodeURIComponent(challengeId) + '/verify', { code: $('code').value });
  if (r.status === 200 && r.body.status === 'rejected') return say('Wrong code; ' + r.body.attempts_left + ' attempts left.');
  answered(r, $('username').value);
});
$('resend').addEventListener('click', async () => {
  const r = await api('POST', '/api/challenges/' + encodeURIComponent(challengeId) + '/resend');
  say(r.status === 200 ? 'A new code is on its way.' : problem(r));
});
$('logout').addEventListener('click', () => { $('password').value = ''; show('login-section'); say('Logged out.'); });
`;
  return page('Sandbox Bank', nonce, body, script);
}

/** A phone's SMS inbox (newest first, codes in large type) that refreshes itself every second. */
export function inboxPage(prefix: string, username: string, phone: string, nonce: string): string {
  const body = `<main>
<h1>Phone of ${escapeHtml(username)}</h1>
<p class="meta">Number ${escapeHtml(phone)}. This page refreshes every second.</p>
<section id="approval" aria-labelledby="approval-heading" hidden>
<h2 id="approval-heading">A login is waiting for your approval</h2>
<button id="approve" type="button">Approve login</button>
</section>
<p id="status" class="status" role="status" aria-live="polite"></p>
<h2>Messages</h2>
<ol id="messages" class="messages" aria-live="polite"></ol>
<p><a href="${escapeHtml(prefix)}/">Back to the bank</a></p>
</main>`;
  const script = `
const url = ${scriptJson(`${prefix}/phone/${encodeURIComponent(username)}`)};
const $ = (id) => document.getElementById(id);
let last = '';
async function refresh() {
  try {
    const res = await fetch(url, { cache: 'no-store' });
    const data = await res.json();
    $('approval').hidden = !data.pending_approval;
    const key = JSON.stringify(data.messages);
    if (key === last) return;
    last = key;
    const list = $('messages');
    list.textContent = '';
    if (data.messages.length === 0) {
      const li = document.createElement('li');
      li.textContent = 'No messages yet.';
      list.appendChild(li);
    }
    for (const m of data.messages) {
      const li = document.createElement('li');
      const meta = document.createElement('p');
      meta.className = 'meta';
      meta.textContent = 'From ' + m.from + ' at ' + new Date(m.sent_at).toLocaleString();
      const code = document.createElement('p');
      code.className = 'code';
      code.textContent = m.code;
      const text = document.createElement('p');
      text.textContent = m.body;
      li.append(meta, code, text);
      list.appendChild(li);
    }
  } catch {
    // The next tick tries again.
  }
}
$('approve').addEventListener('click', async () => {
  const res = await fetch(url + '/approve', { method: 'POST' });
  $('status').textContent = res.ok ? 'Login approved.' : 'Nothing to approve.';
  refresh();
});
refresh();
setInterval(refresh, 1000);
`;
  return page(`Phone of ${username}`, nonce, body, script);
}
