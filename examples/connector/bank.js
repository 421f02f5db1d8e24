#!/usr/bin/env node
// A tiny HTTP "bank" for the example connector (index.js) and its tests: a password login that asks for
// an SMS code, a remembered device that skips the code, two ledgers and their transactions.
//
//   node examples/connector/bank.js [port]      prints "example bank at http://127.0.0.1:PORT/"
//
// Every password is accepted except "wrong" (401); the user "locked" is locked (423). The code of a
// login is not really texted: GET /outbox/:user shows the last one (tests read it there, as a person
// reads their phone). GET /stats counts logins. Sessions last `sessionMs` [15 min]; device tokens 30 days.
// Plain Node.js, no dependencies.

import { randomBytes, randomInt } from 'node:crypto';
import { createServer } from 'node:http';
import { fileURLToPath } from 'node:url';

const DAY = 86_400_000;

/** Starts the bank on 127.0.0.1:`port` [0: a free port]; resolves with its URL, its state and `close`. */
export async function startBank({ port = 0, sessionMs = 15 * 60_000 } = {}) {
  const challenges = new Map(); // id -> { user, code, attemptsLeft, open }
  const sessions = new Map(); // token -> { user, until }
  const devices = new Map(); // device token -> { user, until }
  const outbox = new Map(); // user -> last code
  const stats = { logins: 0, codes_sent: 0 };
  const id = (prefix) => `${prefix}_${randomBytes(12).toString('hex')}`;

  const ledgers = (user) => [
    { id: `${user}-chk`, name: 'Checking', iban: 'NL02EXMP0123456789', currency: 'EUR', balance: '1250.40' },
    { id: `${user}-sav`, name: 'Savings', iban: null, currency: 'EUR', balance: '9000.00' },
  ];
  const transactions = (ledger, from, to) => {
    const out = [];
    for (let t = Date.parse(from); t <= Date.parse(to); t += DAY) {
      const date = new Date(t).toISOString().slice(0, 10);
      out.push({ id: `${ledger}-${date}`, date, amount: '-4.20', counterparty: 'Coffee Corner', memo: null });
    }
    return out;
  };

  function route(method, url, body, token) {
    const path = url.pathname;
    const session = token && sessions.get(token);
    const live = session && session.until > Date.now() ? session : null;
    let m;
    if (method === 'POST' && path === '/login') {
      const { username, password, device_token: device } = body ?? {};
      if (typeof username !== 'string' || typeof password !== 'string') return [400, { error: 'bad_request' }];
      stats.logins++;
      if (username === 'locked') return [423, { error: 'locked' }];
      if (password === 'wrong') return [401, { error: 'invalid_credentials' }];
      const known = device && devices.get(device);
      if (known && known.user === username && known.until > Date.now()) return [200, { token: open(username) }];
      const challenge = id('ch');
      const code = String(randomInt(0, 1_000_000)).padStart(6, '0');
      challenges.set(challenge, { user: username, code, attemptsLeft: 3, open: true });
      outbox.set(username, code);
      stats.codes_sent++;
      return [202, { challenge, length: 6, attempts_left: 3, prompt: 'Enter the code we texted you' }];
    }
    if (method === 'POST' && (m = /^\/challenges\/([\w]+)\/answer$/.exec(path))) {
      const c = challenges.get(m[1]);
      if (!c?.open) return [410, { error: 'gone' }];
      if (body?.code !== c.code) {
        c.attemptsLeft--;
        if (c.attemptsLeft === 0) c.open = false;
        return c.open ? [422, { error: 'wrong_code', attempts_left: c.attemptsLeft }] : [423, { error: 'locked' }];
      }
      c.open = false;
      const device = id('dev');
      devices.set(device, { user: c.user, until: Date.now() + 30 * DAY });
      return [
        200,
        {
          token: open(c.user),
          device_token: device,
          device_expires_at: new Date(devices.get(device).until).toISOString(),
        },
      ];
    }
    if (method === 'GET' && (m = /^\/outbox\/([^/]+)$/.exec(path))) {
      return [200, { code: outbox.get(decodeURIComponent(m[1])) ?? null }];
    }
    if (method === 'GET' && path === '/stats') return [200, stats];
    if (!live) return [401, { error: 'not_logged_in' }];
    if (method === 'GET' && path === '/ping') return [200, { ok: true }];
    if (method === 'POST' && path === '/logout') {
      sessions.delete(token);
      return [204, null];
    }
    if (method === 'GET' && path === '/me') return [200, { full_name: `Customer ${live.user}`, email: null }];
    if (method === 'GET' && path === '/accounts') return [200, ledgers(live.user)];
    if (method === 'GET' && (m = /^\/accounts\/([^/]+)\/transactions$/.exec(path))) {
      const ledger = decodeURIComponent(m[1]);
      if (!ledgers(live.user).some((l) => l.id === ledger)) return [404, { error: 'not_found' }];
      return [200, transactions(ledger, url.searchParams.get('from'), url.searchParams.get('to'))];
    }
    return [404, { error: 'not_found' }];
  }

  function open(user) {
    const token = id('tok');
    sessions.set(token, { user, until: Date.now() + sessionMs });
    return token;
  }

  const server = createServer((req, res) => {
    let raw = '';
    req.setEncoding('utf8');
    req.on('data', (chunk) => {
      raw += chunk;
    });
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://bank');
      let body = null;
      try {
        body = raw ? JSON.parse(raw) : null;
      } catch {
        res.writeHead(400).end();
        return;
      }
      const token = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '')?.[1];
      const [status, answer] = route(req.method, url, body, token);
      res.writeHead(status, { 'content-type': 'application/json' }).end(answer === null ? '' : JSON.stringify(answer));
    });
  });
  await new Promise((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}/`,
    stats,
    /** The last code sent to `user` (what their phone shows). */
    codeFor: (user) => outbox.get(user) ?? null,
    /** Ends every open session at the bank (as a bank does after a while). */
    dropSessions: () => sessions.clear(),
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const bank = await startBank({ port: Number(process.argv[2] ?? 0) });
  process.stdout.write(`example bank at ${bank.url}\n`);
  const stop = () => void bank.close().then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
