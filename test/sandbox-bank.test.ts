import { createHmac } from 'node:crypto';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import Fastify from 'fastify';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { makeSandboxConnector } from '../src/connectors/sandbox.js';
import { ConnectorError, isEngineStop } from '../src/connectors/sdk.js';
import {
  makeFakeTrustStore,
  makeTestClock,
  makeTestContext,
  runLogin,
  type ScriptedCode,
  type TestContextOptions,
} from '../src/connectors/testing.js';
import {
  makeSandboxBank,
  type SandboxBank,
  type SandboxBankOptions,
  startSandboxBankServer,
} from '../src/sandbox-bank/index.js';

const START = Date.UTC(2024, 2, 1, 12, 0, 0); // 2024-03-01T12:00:00Z
const MINUTE = 60_000;

interface Bank {
  base: string;
  clock: { t: number };
  bank: SandboxBank;
}

const closers: Array<() => Promise<void>> = [];

afterEach(async () => {
  while (closers.length > 0) await closers.pop()?.();
});

/** A bank on a real port with a clock the test moves by hand. */
async function startBank(options: SandboxBankOptions = {}): Promise<Bank> {
  const clock = { t: START };
  const bank = makeSandboxBank({ now: () => clock.t, ...options });
  const app = Fastify();
  await app.register(bank.plugin, { prefix: '/sandbox-bank' });
  await app.listen({ port: 0, host: '127.0.0.1' });
  closers.push(() => app.close());
  const { port } = app.server.address() as AddressInfo;
  return { base: `http://127.0.0.1:${port}/sandbox-bank/`, clock, bank };
}

interface Answer {
  status: number;
  body: any;
}

async function call(b: Bank | string, method: string, path: string, body?: unknown, token?: string): Promise<Answer> {
  const headers: Record<string, string> = {};
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (token !== undefined) headers['authorization'] = `Bearer ${token}`;
  const res = await fetch(new URL(path, typeof b === 'string' ? b : b.base), {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text.length > 0 ? JSON.parse(text) : null };
}

const login = (b: Bank, username: string, password = 'hunter2', extra: Record<string, unknown> = {}) =>
  call(b, 'POST', 'api/login', { username, password, ...extra });
const verify = (b: Bank, challenge: string, code: string) =>
  call(b, 'POST', `api/challenges/${challenge}/verify`, { code });
const messages = async (b: Bank, username: string) =>
  (await call(b, 'GET', `phone/${encodeURIComponent(username)}`)).body.messages as Array<{
    body: string;
    code: string;
    sent_at: string;
    to: string;
    from: string;
  }>;
const latestCode = async (b: Bank, username: string) => (await messages(b, username))[0]?.code ?? '';

/** A code that is certainly not `code` but has the same shape. */
function wrongOf(code: string): string {
  const last = code.slice(-1);
  return code.slice(0, -1) + (last === '0' ? '1' : '0');
}

// Independent RFC 6238 implementation, so the test does not trust the bank's own.
function base32(secret: string): Buffer {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const ch of secret) bits += alphabet.indexOf(ch).toString(2).padStart(5, '0');
  const bytes: number[] = [];
  for (let i = 0; i + 8 <= bits.length; i += 8) bytes.push(Number.parseInt(bits.slice(i, i + 8), 2));
  return Buffer.from(bytes);
}

function totp(timeMs: number, secret = 'JBSWY3DPEHPK3PXP'): string {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(timeMs / 30_000)));
  const mac = createHmac('sha1', base32(secret)).update(counter).digest();
  const offset = mac[19]! & 0xf;
  return String((mac.readUInt32BE(offset) & 0x7fffffff) % 1_000_000).padStart(6, '0');
}

describe('sandbox bank HTTP API', () => {
  it('logs alice in without a second factor and serves her data', async () => {
    const b = await startBank();
    const res = await login(b, 'alice');
    expect(res.status).toBe(200);
    expect(res.body.status).toBe('ok');
    const token = res.body.session_token as string;
    const identity = await call(b, 'GET', 'api/identity', undefined, token);
    expect(identity.status).toBe(200);
    expect(identity.body.phone).toMatch(/^\+3161\d{7}$/);
    expect(identity.body.name).toMatch(/^Alice /);
    const accounts = await call(b, 'GET', 'api/accounts', undefined, token);
    expect(accounts.body).toHaveLength(2);
    expect(accounts.body.map((a: { type: string }) => a.type)).toEqual(['current', 'savings']);
    for (const a of accounts.body) {
      expect(a.currency).toBe('EUR');
      expect(a.iban).toMatch(/^NL\d{2}SBNK\d{10}$/);
      expect(a.balance.current).toMatch(/^-?\d+\.\d{2}$/);
      expect(a.balance.as_of).toBe(new Date(START).toISOString());
    }
    expect((await call(b, 'GET', 'api/accounts')).status).toBe(401);
    expect((await call(b, 'GET', 'api/accounts', undefined, 'nope')).status).toBe(401);
  });

  it('refuses the password wrong, unknown users and malformed bodies', async () => {
    const b = await startBank();
    expect(await login(b, 'alice', 'wrong')).toMatchObject({ status: 401, body: { error: 'invalid_credentials' } });
    expect(await login(b, 'bob')).toMatchObject({ status: 401, body: { error: 'invalid_credentials' } });
    expect(await call(b, 'POST', 'api/login', { username: 'alice' })).toMatchObject({
      status: 400,
      body: { error: 'invalid_request' },
    });
    const broken = await fetch(new URL('api/login', b.base), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"username":',
    });
    expect(broken.status).toBe(400);
    expect(await broken.json()).toMatchObject({ error: 'invalid_request' });
    const notFound = await call(b, 'GET', 'api/nothing-here');
    expect(notFound).toMatchObject({ status: 404, body: { error: 'not_found' } });
    expect((await verify(b, 'chl_unknown', '123456')).status).toBe(404);
  });

  it('otp: sends an SMS, rejects a wrong code, accepts the right one', async () => {
    const b = await startBank();
    const res = await login(b, 'otp+1');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ status: 'code_required', code: { length: 6, type: 'numeric', attempts_left: 3 } });
    expect(res.body.code.expires_at).toBe(new Date(START + 120_000).toISOString());
    const sms = await messages(b, 'otp+1');
    expect(sms).toHaveLength(1);
    expect(sms[0]!.code).toMatch(/^\d{6}$/);
    expect(sms[0]!.body).toContain(sms[0]!.code);
    expect(sms[0]!.from).toBe('SandboxBank');
    expect(res.body.code.prompt).toBe(`Enter the code we sent to •••• ${sms[0]!.to.slice(-4)}`);
    // The suffix makes a distinct user with its own phone.
    expect(await messages(b, 'otp+2')).toEqual([]);
    const wrong = await verify(b, res.body.challenge_id, wrongOf(sms[0]!.code));
    expect(wrong).toMatchObject({ status: 200, body: { status: 'rejected', attempts_left: 2 } });
    const right = await verify(b, res.body.challenge_id, sms[0]!.code);
    expect(right.status).toBe(200);
    expect(right.body.status).toBe('ok');
    expect(right.body.trust_token).toBeUndefined();
    expect((await call(b, 'GET', 'api/identity', undefined, right.body.session_token)).status).toBe(200);
    // A used challenge cannot be verified again.
    expect((await verify(b, res.body.challenge_id, sms[0]!.code)).status).toBe(410);
  });

  it('otp: three wrong codes lock the login for good', async () => {
    const b = await startBank();
    const res = await login(b, 'otp+lock');
    const code = await latestCode(b, 'otp+lock');
    expect((await verify(b, res.body.challenge_id, wrongOf(code))).body.attempts_left).toBe(2);
    expect((await verify(b, res.body.challenge_id, wrongOf(code))).body.attempts_left).toBe(1);
    expect(await verify(b, res.body.challenge_id, wrongOf(code))).toMatchObject({
      status: 423,
      body: { error: 'account_locked' },
    });
    expect((await verify(b, res.body.challenge_id, code)).status).toBe(423);
    expect(await login(b, 'otp+lock')).toMatchObject({ status: 423, body: { error: 'account_locked' } });
    // Other users are unaffected.
    expect((await login(b, 'otp+other')).body.status).toBe('code_required');
  });

  it('otp8: 8-character alphanumeric codes', async () => {
    const b = await startBank();
    const res = await login(b, 'otp8');
    expect(res.body.code).toMatchObject({ length: 8, type: 'alphanumeric' });
    const code = await latestCode(b, 'otp8');
    expect(code).toMatch(/^[A-Z0-9]{8}$/);
    expect((await verify(b, res.body.challenge_id, code.toLowerCase())).body.status).toBe('ok');
  });

  it('codes expire after codeValidityMs', async () => {
    const b = await startBank();
    const res = await login(b, 'otp+exp');
    const code = await latestCode(b, 'otp+exp');
    b.clock.t += 120_001;
    expect(await verify(b, res.body.challenge_id, code)).toMatchObject({ status: 410, body: { error: 'expired' } });
    expect((await call(b, 'GET', `api/challenges/${res.body.challenge_id}`)).body.status).toBe('expired');
  });

  it('resend: fresh code, old one invalid, at most three', async () => {
    const b = await startBank();
    const res = await login(b, 'otp+resend');
    const first = await latestCode(b, 'otp+resend');
    b.clock.t += MINUTE;
    const again = await call(b, 'POST', `api/challenges/${res.body.challenge_id}/resend`);
    expect(again.status).toBe(200);
    expect(again.body.code.expires_at).toBe(new Date(START + MINUTE + 120_000).toISOString());
    const second = await latestCode(b, 'otp+resend');
    expect(await messages(b, 'otp+resend')).toHaveLength(2);
    if (first !== second) {
      expect((await verify(b, res.body.challenge_id, first)).body.status).toBe('rejected');
    }
    for (let i = 0; i < 2; i++) {
      expect((await call(b, 'POST', `api/challenges/${res.body.challenge_id}/resend`)).status).toBe(200);
    }
    expect(await call(b, 'POST', `api/challenges/${res.body.challenge_id}/resend`)).toMatchObject({
      status: 429,
      body: { error: 'too_many_resends' },
    });
    expect((await verify(b, res.body.challenge_id, await latestCode(b, 'otp+resend'))).body.status).toBe('ok');
  });

  it('corporate: a code first, none within the window, a code again after it', async () => {
    const b = await startBank();
    const first = await login(b, 'corporate');
    expect(first.body.status).toBe('code_required');
    expect((await verify(b, first.body.challenge_id, await latestCode(b, 'corporate'))).body.status).toBe('ok');
    b.clock.t += 4 * MINUTE;
    expect((await login(b, 'corporate')).body.status).toBe('ok');
    // The window runs from the last successful login, which was just now.
    b.clock.t += 5 * MINUTE;
    expect((await login(b, 'corporate')).body.status).toBe('ok');
    b.clock.t += 5 * MINUTE + 1;
    expect((await login(b, 'corporate')).body.status).toBe('code_required');
  });

  it('trust: a trust token skips the code until it expires; otp never honours it', async () => {
    const b = await startBank();
    const res = await login(b, 'trust');
    expect(res.body.status).toBe('code_required');
    const ok = await verify(b, res.body.challenge_id, await latestCode(b, 'trust'));
    const trustToken = ok.body.trust_token as string;
    expect(trustToken).toMatch(/^trust_/);
    expect(ok.body.trust_expires_at).toBe(new Date(b.clock.t + 30 * 24 * 60 * MINUTE).toISOString());
    expect(await login(b, 'trust', 'hunter2', { trust_token: trustToken })).toMatchObject({ body: { status: 'ok' } });
    expect((await login(b, 'otp+t', 'hunter2', { trust_token: trustToken })).body.status).toBe('code_required');
    expect((await login(b, 'trust+other', 'hunter2', { trust_token: trustToken })).body.status).toBe('code_required');
    b.clock.t += 30 * 24 * 60 * MINUTE + 1;
    expect((await login(b, 'trust', 'hunter2', { trust_token: trustToken })).body.status).toBe('code_required');
  });

  it('totp: accepts the authenticator code of the current step and one step either side', async () => {
    const b = await startBank();
    const res = await login(b, 'totp');
    expect(res.body).toMatchObject({
      status: 'totp_required',
      code: { length: 6, type: 'numeric', prompt: 'Enter the code from your authenticator app' },
    });
    expect(await messages(b, 'totp')).toEqual([]);
    const now = totp(b.clock.t);
    const farOff = [totp(b.clock.t + 90_000), totp(b.clock.t - 90_000), wrongOf(now)].find(
      (c) => c !== now && c !== totp(b.clock.t - 30_000) && c !== totp(b.clock.t + 30_000),
    )!;
    expect((await verify(b, res.body.challenge_id, farOff)).body.status).toBe('rejected');
    expect((await verify(b, res.body.challenge_id, totp(b.clock.t - 30_000))).body.status).toBe('ok');
    const next = await login(b, 'totp');
    expect((await verify(b, next.body.challenge_id, now)).body.status).toBe('ok');
  });

  it('approve: the phone approves the pending login, the challenge hands over one session', async () => {
    const b = await startBank();
    const res = await login(b, 'approve');
    expect(res.body).toMatchObject({
      status: 'approval_required',
      expires_at: new Date(START + 120_000).toISOString(),
    });
    const id = res.body.challenge_id as string;
    expect((await call(b, 'GET', `api/challenges/${id}`)).body.status).toBe('pending');
    expect((await call(b, 'GET', 'phone/approve')).body.pending_approval).not.toBeNull();
    expect(await call(b, 'POST', 'phone/approve/approve')).toMatchObject({ status: 200, body: { approved: true } });
    const done = await call(b, 'GET', `api/challenges/${id}`);
    expect(done.body.status).toBe('ok');
    expect((await call(b, 'GET', 'api/accounts', undefined, done.body.session_token)).status).toBe(200);
    expect((await call(b, 'GET', `api/challenges/${id}`)).body.status).toBe('used');
    expect(await call(b, 'POST', 'phone/approve/approve')).toMatchObject({ status: 404, body: { error: 'not_found' } });

    const late = await login(b, 'approve');
    b.clock.t += 120_001;
    expect((await call(b, 'GET', `api/challenges/${late.body.challenge_id}`)).body.status).toBe('expired');
    expect((await call(b, 'POST', 'phone/approve/approve')).status).toBe(404);
  });

  it('locked and flaky users', async () => {
    const b = await startBank();
    expect(await login(b, 'locked')).toMatchObject({ status: 423, body: { error: 'account_locked' } });
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) statuses.push((await login(b, 'flaky+1')).status);
    expect(statuses).toEqual([503, 200, 503, 200]);
    expect((await login(b, 'flaky+2')).status).toBe(503);
  });

  it('slow: every call takes slowMs, and concurrent logins show in the stats', async () => {
    const b = await startBank({ slowMs: 100 });
    const started = performance.now();
    const results = await Promise.all([login(b, 'slow+1'), login(b, 'slow+2'), login(b, 'slow+3')]);
    expect(performance.now() - started).toBeGreaterThanOrEqual(95);
    expect(results.map((r) => r.body.status)).toEqual(['ok', 'ok', 'ok']);
    expect(b.bank.stats()).toEqual({ activeLogins: 0, maxActiveLogins: 3, logins: 3 });
    const t0 = performance.now();
    expect((await call(b, 'GET', 'api/accounts', undefined, results[0]!.body.session_token)).status).toBe(200);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(95);
  });

  it('stats count a login waiting on its code until it ends', async () => {
    const b = await startBank();
    const a = await login(b, 'otp+s1');
    const c = await login(b, 'otp+s2');
    expect(b.bank.stats()).toMatchObject({ activeLogins: 2, maxActiveLogins: 2, logins: 2 });
    await verify(b, a.body.challenge_id, await latestCode(b, 'otp+s1'));
    expect(b.bank.stats().activeLogins).toBe(1);
    expect((await call(b, 'DELETE', `api/challenges/${c.body.challenge_id}`)).body.status).toBe('cancelled');
    expect(b.bank.stats().activeLogins).toBe(0);
    await login(b, 'otp+s3');
    expect(b.bank.stats().activeLogins).toBe(1);
    b.clock.t += 120_001;
    expect(b.bank.stats()).toMatchObject({ activeLogins: 0, maxActiveLogins: 2, logins: 3 });
  });

  it('sessions expire after 15 minutes', async () => {
    const b = await startBank();
    const token = (await login(b, 'alice')).body.session_token;
    b.clock.t += 15 * MINUTE;
    expect((await call(b, 'GET', 'api/identity', undefined, token)).status).toBe(200);
    b.clock.t += 1;
    expect((await call(b, 'GET', 'api/identity', undefined, token)).status).toBe(401);
  });

  it('movements are deterministic and keep arriving as time passes', async () => {
    const b = await startBank({ sessionValidityMs: 24 * 60 * MINUTE });
    const token = (await login(b, 'alice')).body.session_token;
    const accounts = (await call(b, 'GET', 'api/accounts', undefined, token)).body;
    const current = accounts[0].id as string;
    const path = `api/accounts/${current}/transactions?from=2024-02-29&to=2024-03-01`;
    const before = (await call(b, 'GET', path, undefined, token)).body;
    // Slots at 00:00, 08:00, 16:00 on the 29th and 00:00, 08:00 on the 1st are visible at 12:00.
    expect(before.map((m: { booked_at: string }) => m.booked_at)).toEqual([
      '2024-03-01T08:00:00.000Z',
      '2024-03-01T00:00:00.000Z',
      '2024-02-29T16:00:00.000Z',
      '2024-02-29T08:00:00.000Z',
      '2024-02-29T00:00:00.000Z',
    ]);
    for (const m of before) {
      expect(m.id).toMatch(new RegExp(`^tx_${current}_\\d+$`));
      expect(m.amount).toMatch(/^-?\d+\.\d{2}$/);
      expect(m.currency).toBe('EUR');
      expect(typeof m.name).toBe('string');
    }
    expect((await call(b, 'GET', path, undefined, token)).body).toEqual(before);

    b.clock.t += 8 * 60 * MINUTE;
    const after = (await call(b, 'GET', path, undefined, token)).body;
    expect(after).toHaveLength(6);
    expect(after[0].booked_at).toBe('2024-03-01T16:00:00.000Z');
    expect(after.slice(1)).toEqual(before);

    // Another bank with the same clock generates the very same data.
    const other = await startBank();
    other.clock.t = b.clock.t;
    const otherToken = (await login(other, 'alice')).body.session_token;
    const otherAccounts = (await call(other, 'GET', 'api/accounts', undefined, otherToken)).body;
    expect(otherAccounts).toEqual((await call(b, 'GET', 'api/accounts', undefined, token)).body);
    expect((await call(other, 'GET', path, undefined, otherToken)).body).toEqual(after);

    // A different user has different accounts.
    const bob = (await login(b, 'alice+bob')).body.session_token;
    expect((await call(b, 'GET', 'api/accounts', undefined, bob)).body[0].id).not.toBe(current);
    expect((await call(b, 'GET', `api/accounts/${current}/transactions`, undefined, bob)).status).toBe(404);
    expect(
      (await call(b, 'GET', `api/accounts/${current}/transactions?from=2024-13-01`, undefined, token)).status,
    ).toBe(400);
    expect(
      (await call(b, 'GET', `api/accounts/${current}/transactions?from=2024-03-02&to=2024-03-01`, undefined, token))
        .status,
    ).toBe(400);
  });

  it('forwards SMS to a relay in Twilio format with a valid signature', async () => {
    const b = await startBank();
    const received = deferred<{ req: IncomingMessage; body: string }>();
    const server = createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (chunk: string) => {
        body += chunk;
      });
      req.on('end', () => {
        res.end('<Response/>');
        received.resolve({ req, body });
      });
    });
    await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
    closers.push(() => new Promise((done) => server.close(() => done())));
    const { port } = server.address() as AddressInfo;
    // A query string with an escape: the signature covers the URL exactly as configured.
    const url = `http://127.0.0.1:${port}/relay/twilio?tenant=a%20b`;
    const put = await call(b, 'PUT', 'phone/otp%2Btw/forward', { url, format: 'twilio', auth_token: 'secret-token' });
    expect(put.status).toBe(200);
    await login(b, 'otp+tw');
    const { req, body } = await received.promise;
    expect(req.headers['content-type']).toBe('application/x-www-form-urlencoded');
    const params = Object.fromEntries(new URLSearchParams(body));
    const sms = (await messages(b, 'otp+tw'))[0]!;
    expect(params).toMatchObject({ From: 'SandboxBank', To: sms.to, Body: sms.body, NumMedia: '0' });
    expect(params['MessageSid']).toMatch(/^SM[0-9a-f]{32}$/);
    expect(params['AccountSid']).toMatch(/^AC[0-9a-f]{32}$/);
    const data =
      url +
      Object.keys(params)
        .sort()
        .map((k) => k + params[k])
        .join('');
    const expected = createHmac('sha1', 'secret-token').update(data).digest('base64');
    expect(req.headers['x-twilio-signature']).toBe(expected);

    expect((await call(b, 'DELETE', 'phone/otp%2Btw/forward')).status).toBe(200);
    expect((await call(b, 'PUT', 'phone/otp/forward', { url: 'ftp://x', format: 'json' })).status).toBe(400);
    expect((await call(b, 'PUT', 'phone/bob/forward', { url, format: 'json' })).status).toBe(404);
  });

  it('forwards SMS as JSON, and a dead relay harms nothing', async () => {
    const b = await startBank();
    const got = deferred<{ to: string; from: string; body: string; received_at: string }>();
    const server = createServer((req, res) => {
      let body = '';
      req.on('data', (chunk: Buffer) => {
        body += chunk.toString('utf8');
      });
      req.on('end', () => {
        res.end();
        got.resolve(JSON.parse(body));
      });
    });
    await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
    closers.push(() => new Promise((done) => server.close(() => done())));
    const { port } = server.address() as AddressInfo;
    await call(b, 'PUT', 'phone/otp8%2Bjs/forward', { url: `http://127.0.0.1:${port}/in`, format: 'json' });
    await login(b, 'otp8+js');
    const sms = (await messages(b, 'otp8+js'))[0]!;
    expect(await got.promise).toEqual({ to: sms.to, from: 'SandboxBank', body: sms.body, received_at: sms.sent_at });

    await call(b, 'PUT', 'phone/otp%2Bdead/forward', { url: 'http://127.0.0.1:1/nothing', format: 'json' });
    expect((await login(b, 'otp+dead')).body.status).toBe('code_required');
  });

  it('serves the portal and the phone inbox as HTML', async () => {
    const b = await startBank();
    const portal = await fetch(b.base);
    expect(portal.status).toBe(200);
    expect(portal.headers.get('content-type')).toContain('text/html');
    const html = await portal.text();
    expect(html).toContain('<label for="username">Username</label>');
    expect(html).toContain('<label for="password">Password</label>');
    expect(html).toContain('otp8');
    const inbox = await fetch(new URL('phone/otp%2B42/inbox', b.base));
    expect(inbox.status).toBe(200);
    const inboxHtml = await inbox.text();
    expect(inboxHtml).toContain('Phone of otp+42');
    expect(inboxHtml).toContain('setInterval(refresh, 1000)');
    expect((await fetch(new URL('phone/nobody/inbox', b.base))).status).toBe(404);
  });

  it('marks every route public and hidden for the host', async () => {
    const routes: Array<{ url: string; hide: unknown; isPublic: unknown }> = [];
    const app = Fastify();
    app.addHook('onRoute', (route) => {
      routes.push({
        url: route.url,
        hide: (route.schema as { hide?: unknown } | undefined)?.hide,
        isPublic: (route.config as { public?: unknown } | undefined)?.public,
      });
    });
    await app.register(makeSandboxBank().plugin, { prefix: '/sandbox-bank' });
    await app.ready();
    closers.push(() => app.close());
    expect(routes.length).toBeGreaterThan(10);
    for (const route of routes) expect(route).toMatchObject({ hide: true, isPublic: true });
  });

  it('runs standalone', async () => {
    const server = await startSandboxBankServer({ port: 0, host: '127.0.0.1' });
    closers.push(() => server.close());
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/sandbox-bank\/$/);
    const res = await call(server.url, 'POST', 'api/login', { username: 'alice', password: 'x' });
    expect(res.body.status).toBe('ok');
  });
});

function deferred<T>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

// ---- connector (driven by the SDK's test kit, as a connector author's tests would be) ----------------------------

/** One scripted code: the bank's latest SMS to the user, that code made wrong, or the authenticator's current code. */
type Step = 'phone' | 'totp' | 'wrong';

describe('sandbox connector', () => {
  let b: Bank;
  const clock = makeTestClock(START);
  const connector = makeSandboxConnector({ baseUrl: () => b.base });
  const code = (username: string, step: Step): ScriptedCode =>
    step === 'totp'
      ? () => totp(clock.now())
      : async () => (step === 'wrong' ? wrongOf(await latestCode(b, username)) : latestCode(b, username));
  /** A test login of `username` (password `pw`) whose person submits `steps`, one code each. */
  const kit = (username: string, steps: Step[] = ['phone'], options: Partial<TestContextOptions> = {}) =>
    makeTestContext({
      credentials: { username, password: 'pw' },
      codes: steps.map((step) => code(username, step)),
      clock,
      ...options,
    });

  beforeAll(async () => {
    // The bank runs on the kit's clock: the test moves both at once.
    const bank = makeSandboxBank({ now: clock.now });
    const app = Fastify();
    await app.register(bank.plugin, { prefix: '/sandbox-bank' });
    await app.listen({ port: 0, host: '127.0.0.1' });
    const { port } = app.server.address() as AddressInfo;
    b = { base: `http://127.0.0.1:${port}/sandbox-bank/`, clock: { t: START }, bank };
    afterAll(() => app.close());
  });

  async function failure(promise: Promise<unknown>): Promise<ConnectorError> {
    const err = await promise.then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ConnectorError);
    return err as ConnectorError;
  }

  it('describes itself', () => {
    expect(connector).toMatchObject({ id: 'sandbox', name: 'Sandbox Bank', version: '1.0.0' });
    expect(connector.credential_fields.map((f) => [f.name, f.type, f.required])).toEqual([
      ['username', 'text', true],
      ['password', 'password', true],
    ]);
  });

  it('logs alice in and reads accounts, balances, identity and movements', async () => {
    const run = await runLogin(connector, {
      credentials: { username: 'alice', password: 'pw' },
      clock,
      range: { from: '2024-02-20', to: '2024-03-01' },
    });
    const { data } = run;
    expect(run.code_requests).toEqual([]);
    expect(data.problems).toEqual([]);
    expect(data.accounts).toHaveLength(2);
    expect(data.accounts[0]).toMatchObject({ currency: 'EUR', type: 'current', name: 'Current account' });
    expect(data.accounts[0]!.iban).toMatch(/^NL/);
    expect(data.balances.map((x) => x.bank_account_id)).toEqual(data.accounts.map((a) => a.id));
    expect(data.identity.phone).toMatch(/^\+3161/);
    // 10 full days (30 slots) plus 2 slots of March 1st up to 12:00, per account.
    expect(data.movements).toHaveLength(2 * 32);
    for (const m of data.movements) expect(m.id).toBe(`tx_${m.bank_account_id}_${m.id!.split('_').pop()}`);
    // Ledgers, balances and identity are read together (as the engine does), then movements.
    expect(run.stages.map((s) => s.name).slice(0, 2)).toEqual(['login', 'logged_in']);
    expect(run.stages.map((s) => s.name).slice(-1)).toEqual(['movements']);
    expect(run.leaks()).toEqual([]);
  });

  it('hands an SMS code request to the engine, survives a wrong code, and logs in', async () => {
    const h = kit('otp+c1', ['wrong', 'phone']);
    const session = await connector.login(h.ctx);
    expect(h.code_requests).toHaveLength(1);
    const phone = (await messages(b, 'otp+c1'))[0]!.to;
    expect(h.code_requests[0]).toEqual({
      length: 6,
      type: 'numeric',
      purpose: 'login',
      prompt: `Enter the code we sent to •••• ${phone.slice(-4)}`,
      channel: 'sms',
      max_attempts: 2, // one below the bank's 3: the last attempt would lock the login
    });
    expect(h.verdicts.map((v) => v.outcome)).toEqual(['rejected', 'accepted']);
    expect(h.stages.map((s) => s.name).slice(0, 2)).toEqual(['login', 'code']);
    expect((await session.bankAccounts()).length).toBe(2);
    expect(h.leaks()).toEqual([]);
  });

  it('never passes a code that cannot fit, and asks the bank for a new SMS', async () => {
    const h = makeTestContext({
      credentials: { username: 'otp+c6', password: 'pw' },
      codes: ['12ab', 'resend', code('otp+c6', 'phone')],
      clock,
    });
    await connector.login(h.ctx);
    expect(h.refused).toEqual([{ code: '12ab', reason: 'the code must contain digits only' }]);
    expect(h.verdicts.map((v) => v.outcome)).toEqual(['accepted']);
    expect(await messages(b, 'otp+c6')).toHaveLength(2);
  });

  it('handles alphanumeric codes, TOTP and trust tokens', async () => {
    const eight = kit('otp8+c');
    await connector.login(eight.ctx);
    expect(eight.code_requests[0]).toMatchObject({ length: 8, type: 'alphanumeric' });

    const auth = kit('totp+c', ['totp']);
    await connector.login(auth.ctx);
    expect(auth.code_requests[0]).toMatchObject({ length: 6, prompt: 'Enter the code from your authenticator app' });

    const trust = makeFakeTrustStore();
    const first = kit('trust+c', ['phone'], { trust });
    await connector.login(first.ctx);
    expect(first.code_requests).toHaveLength(1);
    expect(trust.value).toMatch(/^trust_/);
    expect(trust.expires_at!.getTime()).toBeGreaterThan(clock.now());
    const second = kit('trust+c', ['phone'], { trust });
    await connector.login(second.ctx);
    expect(second.code_requests).toHaveLength(0);
  });

  it('waits for a decoupled approval', async () => {
    const h = kit('approve+c', [], {
      approvals: [
        async () => {
          await call(b, 'POST', 'phone/approve%2Bc/approve');
        },
      ],
    });
    const session = await connector.login(h.ctx);
    expect(h.stages.map((s) => s.name)).toContain('approval');
    expect(h.approval_requests).toEqual([
      { purpose: 'login', prompt: 'Approve this login in the SandboxBank app on your phone' },
    ]);
    expect((await session.identity()).name).toMatch(/^Approve /);
  });

  it('maps bank failures to typed errors without leaking secrets', async () => {
    const wrong = await failure(
      connector.login(makeTestContext({ credentials: { username: 'alice', password: 'wrong' } }).ctx),
    );
    expect(wrong.kind).toBe('invalid_credentials');
    expect(wrong.message).not.toContain('wrong');
    expect((await failure(connector.login(kit('locked').ctx))).kind).toBe('account_locked');
    expect((await failure(connector.login(kit('flaky+c').ctx))).kind).toBe('bank_unavailable');
    await connector.login(kit('flaky+c').ctx);

    // The person is too slow: the bank's code has expired when it arrives.
    const slow = kit('otp+c4', [], {
      codes: [
        async () => {
          const real = await latestCode(b, 'otp+c4');
          clock.advance(120_001);
          return real;
        },
      ],
    });
    const expired = await failure(connector.login(slow.ctx));
    expect(expired).toMatchObject({ kind: 'code_rejected', message: 'the bank says the code expired' });

    const nowhere = makeSandboxConnector({ baseUrl: () => 'http://127.0.0.1:1/sandbox-bank/' });
    expect((await failure(nowhere.login(kit('alice').ctx))).kind).toBe('bank_unavailable');
  });

  it('never spends the attempt that would lock the login', async () => {
    const h = kit('otp+c3', ['wrong', 'wrong', 'wrong']);
    const stop = await connector.login(h.ctx).then(
      () => null,
      (e: unknown) => e,
    );
    // The engine stops after max_attempts (2) rejections; the bank's third, locking attempt is never used.
    expect(isEngineStop(stop)).toBe(true);
    expect(stop).toMatchObject({ reason: 'attempts_exhausted' });
    expect(h.verdicts.map((v) => v.outcome)).toEqual(['rejected', 'rejected']);
    await connector.login(kit('otp+c3').ctx);
  });

  it('gives the challenge back when the engine gives up on the code', async () => {
    const before = b.bank.stats().activeLogins;
    const stop = await connector.login(kit('otp+c5', []).ctx).then(
      () => null,
      (e: unknown) => e,
    );
    expect(isEngineStop(stop)).toBe(true);
    await vi.waitFor(() => expect(b.bank.stats().activeLogins).toBe(before));
  });

  it('lets an approval nobody gives expire at the deadline, on the kit clock', async () => {
    const start = clock.now();
    const h = kit('approve+c3', [], { approvals: ['ignore'], assist_timeout_seconds: 60 });
    const stop = await connector.login(h.ctx).then(
      () => null,
      (e: unknown) => e,
    );
    expect(isEngineStop(stop)).toBe(true);
    expect(clock.now() - start).toBeGreaterThanOrEqual(59_000);
  });

  it('stops polling an approval when the login is cancelled', async () => {
    const h = kit('approve+c2', [], {
      onStage: (name) => {
        if (name === 'approval') h.cancel();
      },
    });
    const stop = await connector.login(h.ctx).then(
      () => null,
      (e: unknown) => e,
    );
    expect(isEngineStop(stop)).toBe(true);
  });
});
