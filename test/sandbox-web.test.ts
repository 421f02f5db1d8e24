import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type SandboxBankServer, startSandboxBankServer } from '../src/sandbox-bank/index.js';

/** The sandbox bank's website over plain HTTP (the browser side is in browser-scripts.test.ts). */

const START = Date.UTC(2024, 2, 1, 12, 0, 0);
const clock = { t: START };
let bank: SandboxBankServer;
let n = 0;

beforeAll(async () => {
  bank = await startSandboxBankServer({
    port: 0,
    host: '127.0.0.1',
    bank: { now: () => clock.t, webSlowMs: 0, webIdleMs: 60_000, webPageSize: 50 },
  });
});
afterAll(async () => {
  await bank?.close();
});

/** One browser: a cookie jar over fetch, redirects not followed (the test checks each one). */
function browser() {
  const jar = new Map<string, string>();
  const send = async (path: string, form?: Record<string, string>) => {
    const res = await fetch(new URL(`web/${path}`, bank.url), {
      method: form ? 'POST' : 'GET',
      redirect: 'manual',
      headers: {
        cookie: [...jar].map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join('; '),
        ...(form ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
      },
      ...(form ? { body: new URLSearchParams(form).toString() } : {}),
    });
    for (const line of res.headers.getSetCookie()) {
      const [pair = '', ...attrs] = line.split('; ');
      const [name = '', value = ''] = pair.split('=');
      if (attrs.includes('Max-Age=0')) jar.delete(name);
      else jar.set(name, decodeURIComponent(value));
    }
    return { status: res.status, location: res.headers.get('location'), html: await res.text() };
  };
  return { jar, send };
}

async function latestCode(username: string): Promise<string> {
  const res = await fetch(new URL(`phone/${encodeURIComponent(username)}`, bank.url));
  const body = (await res.json()) as { messages: { code: string }[] };
  return body.messages[0]!.code;
}

const user = (base: string) => `${base}+w${++n}`;

describe('the sandbox website', () => {
  it('covers the page with a cookie banner until it is accepted', async () => {
    const b = browser();
    const first = await b.send('login');
    expect(first.html).toContain('id="cookie-banner"');
    const accepted = await b.send('consent', { back: '/sandbox-bank/web/login' });
    expect(accepted).toMatchObject({ status: 303, location: '/sandbox-bank/web/login' });
    expect((await b.send('login')).html).not.toContain('id="cookie-banner"');
    // The form returns only to pages of the website.
    expect((await b.send('consent', { back: 'https://evil.example/' })).location).toBe('/sandbox-bank/web/login');
  });

  it('asks for the code, rejects a wrong one, resends, and remembers a trusted device', async () => {
    const b = browser();
    const username = user('trust');
    const login = await b.send('login', { username, password: 'pw' });
    expect(login).toMatchObject({ status: 303, location: '/sandbox-bank/web/otp' });
    const otp = await b.send('otp');
    expect(otp.html).toMatch(/Enter the code we sent to •••• \d{4}/);
    expect(otp.html).toContain('Trust this device');
    const first = await latestCode(username);
    await b.send('otp', { code: first === '000000' ? '111111' : '000000' });
    expect((await b.send('otp')).html).toContain('The code is not correct. 2 attempt(s) left.');
    expect((await b.send('otp/resend', {})).location).toBe('/sandbox-bank/web/otp');
    expect((await b.send('otp')).html).toContain('A new code is on its way.');
    const second = await latestCode(username);
    const verified = await b.send('otp', { code: second, trust: '1' });
    expect(verified).toMatchObject({ status: 303, location: '/sandbox-bank/web/accounts' });
    expect(b.jar.has('sbw_device')).toBe(true);
    expect((await b.send('accounts')).html).toContain('Current account');

    // The same browser logs in again without a code; another browser still needs one.
    await b.send('logout', {});
    expect((await b.send('login', { username, password: 'pw' })).location).toBe('/sandbox-bank/web/accounts');
    expect((await browser().send('login', { username, password: 'pw' })).location).toBe('/sandbox-bank/web/otp');
  });

  it('pages through the movements, the same ones the JSON API lists', async () => {
    const b = browser();
    const username = user('alice');
    expect((await b.send('login', { username, password: 'pw' })).location).toBe('/sandbox-bank/web/accounts');
    const accounts = await b.send('accounts');
    const id = /data-account-id="([^"]+)"/.exec(accounts.html)![1]!;
    const ids: string[] = [];
    let page = 1;
    for (;;) {
      const html = (await b.send(`accounts/${id}/movements?from=2024-01-01&to=2024-02-29&page=${page}`)).html;
      ids.push(...[...html.matchAll(/<tr data-id="([^"]+)"/g)].map((m) => m[1]!));
      if (!html.includes('rel="next"')) break;
      page++;
    }
    expect(page).toBeGreaterThan(3);
    const token = await fetch(new URL('api/login', bank.url), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username, password: 'pw' }),
    }).then(async (r) => ((await r.json()) as { session_token: string }).session_token);
    const api = await fetch(new URL(`api/accounts/${id}/transactions?from=2024-01-01&to=2024-02-29`, bank.url), {
      headers: { authorization: `Bearer ${token}` },
    }).then(async (r) => (await r.json()) as { id: string }[]);
    expect(ids).toEqual(api.map((m) => m.id));
    expect((await b.send(`accounts/${id}/movements?page=0`)).status).toBe(400);
  });

  it('times an idle session out, and shows the bank’s failures', async () => {
    const b = browser();
    await b.send('login', { username: user('alice'), password: 'pw' });
    clock.t += 61_000;
    expect((await b.send('accounts')).location).toBe('/sandbox-bank/web/login?expired=1');
    expect((await b.send('login?expired=1')).html).toContain('Your session has expired');
    const locked = await b.send('login', { username: user('locked'), password: 'pw' });
    expect(locked.status).toBe(423);
    expect(locked.html).toContain('Your account is locked');
    const wrong = await b.send('login', { username: user('alice'), password: 'wrong' });
    expect(wrong.status).toBe(401);
    expect((await b.send('login', { username: user('flaky'), password: 'pw' })).status).toBe(503);
    expect((await b.send('accounts')).location).toBe('/sandbox-bank/web/login');
  });

  it('switches to the compact layout behind its flag', async () => {
    const b = browser();
    b.jar.set('sbw_layout', 'compact');
    const page = (await b.send('login')).html;
    expect(page).toContain('>Sign in</button>');
    expect(page.indexOf('id="password"')).toBeLessThan(page.indexOf('id="username"'));
    await b.send('login', { username: user('alice'), password: 'pw' });
    const id = /data-account-id="([^"]+)"/.exec((await b.send('accounts')).html)![1]!;
    const movements = (await b.send(`accounts/${id}/movements`)).html;
    expect(movements).toContain('<ul class="cards" id="movements">');
    expect(movements).toMatch(/<li data-id="tx_/);
  });
});
