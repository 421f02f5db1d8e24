import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSandboxAccount, pendingRequest, scrape, sessionEnd } from './helpers/flows.js';
import { startTestServer, type TestServer } from './helpers/server.js';
import { storeEnv } from './helpers/store.js';

const run = promisify(execFile);
let t: TestServer;
let adminPassword: string;

beforeAll(async () => {
  t = await startTestServer();
  // The test server hands the bootstrap secrets to the test instead of printing them.
  adminPassword = t.server.bootstrap!.adminPassword;
  await run(
    process.execPath,
    [
      'dist/cli.js',
      'users',
      'create',
      '--email',
      'viewer@example.org',
      '--password',
      'viewer-password-1',
      '--role',
      'viewer',
    ],
    {
      env: { ...process.env, OTPILOT_DATA_DIR: t.dataDir, ...(await storeEnv(t.dataDir)) },
    },
  );
});
afterAll(async () => {
  await t?.close();
});

async function login(email: string, password: string) {
  return fetch(`${t.url}/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email, password }),
  });
}

async function signIn(email: string, password: string): Promise<{ token: string; cookie: string }> {
  const reply = await login(email, password);
  expect(reply.status).toBe(200);
  const body = (await reply.json()) as { token: string };
  const cookie = reply.headers.get('set-cookie')!;
  return { token: body.token, cookie: cookie.split(';')[0]! };
}

describe('dashboard sign-in', () => {
  it('refuses a wrong password and signs in with the right one, by cookie or bearer', async () => {
    const wrong = await login('admin@otpilot.local', 'not-it');
    expect(wrong.status).toBe(401);
    expect(((await wrong.json()) as any).error.code).toBe('UNAUTHORIZED');

    const reply = await login('ADMIN@otpilot.local', adminPassword);
    expect(reply.status).toBe(200);
    const body = (await reply.json()) as any;
    expect(body.user).toMatchObject({ email: 'admin@otpilot.local', role: 'admin' });
    expect(body.token).toMatch(/^ots_/);
    const setCookie = reply.headers.get('set-cookie')!;
    expect(setCookie).toMatch(/^otpilot_session=ots_/);
    expect(setCookie).toMatch(/HttpOnly/i);
    expect(setCookie).toMatch(/SameSite=Lax/i);

    const byCookie = await fetch(`${t.url}/me`, { headers: { cookie: setCookie.split(';')[0]! } });
    expect(((await byCookie.json()) as any).user.email).toBe('admin@otpilot.local');
    const byBearer = await fetch(`${t.url}/me`, { headers: { authorization: `Bearer ${body.token}` } });
    expect(byBearer.status).toBe(200);
    expect((await fetch(`${t.url}/me`)).status).toBe(401);
  });

  it('keeps API keys and user sessions apart', async () => {
    const { token } = await signIn('admin@otpilot.local', adminPassword);
    const keyOnDashboard = await fetch(`${t.url}/accounts`, { headers: { authorization: `Bearer ${t.key}` } });
    expect(keyOnDashboard.status).toBe(401);
    const sessionOnApi = await fetch(`${t.url}/v1/accounts`, { headers: { authorization: `Bearer ${token}` } });
    expect(sessionOnApi.status).toBe(401);
    expect(((await sessionOnApi.json()) as any).error.code).toBe('INVALID_API_KEY');
    const dashboard = await fetch(`${t.url}/accounts`, { headers: { authorization: `Bearer ${token}` } });
    expect(((await dashboard.json()) as any).data.map((a: any) => a.id)).toContain(t.tourAccountId);
  });

  it('lets a viewer read but not submit codes or scrape', async () => {
    const viewer = await signIn('viewer@example.org', 'viewer-password-1');
    const headers = { authorization: `Bearer ${viewer.token}`, 'content-type': 'application/json' };
    expect((await fetch(`${t.url}/accounts/${t.tourAccountId}/status`, { headers })).status).toBe(200);
    const otp = await fetch(`${t.url}/accounts/${t.tourAccountId}/otp`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ code: '123456' }),
    });
    expect(otp.status).toBe(403);
    expect(((await otp.json()) as any).error.code).toBe('FORBIDDEN');
    expect((await fetch(`${t.url}/accounts/${t.tourAccountId}/scrape`, { method: 'POST', headers })).status).toBe(403);
  });

  it('refuses a cross-site write made with the cookie, and accepts the same-origin one', async () => {
    const admin = await signIn('admin@otpilot.local', adminPassword);
    const account = await createSandboxAccount(t.api, 'alice');
    const forged = await fetch(`${t.url}/accounts/${account.id}/scrape`, {
      method: 'POST',
      headers: { cookie: admin.cookie, origin: 'https://evil.example' },
    });
    expect(forged.status).toBe(403);
    expect(((await forged.json()) as any).error.message).toContain('cross-site');
    const noOrigin = await fetch(`${t.url}/accounts/${account.id}/scrape`, {
      method: 'POST',
      headers: { cookie: admin.cookie },
    });
    expect(noOrigin.status).toBe(403);
    expect((await t.api.get(`/v1/accounts/${account.id}/sessions`)).body.data).toHaveLength(0);
    const same = await fetch(`${t.url}/accounts/${account.id}/scrape`, {
      method: 'POST',
      headers: { cookie: admin.cookie, origin: t.url },
    });
    expect(same.status).toBe(202);
    await sessionEnd(t.api, ((await same.json()) as any).session_id);
  });

  it('streams the organization events at /events for a signed-in user', async () => {
    const admin = await signIn('admin@otpilot.local', adminPassword);
    const controller = new AbortController();
    const stream = await fetch(`${t.url}/events`, {
      headers: { authorization: `Bearer ${admin.token}` },
      signal: controller.signal,
    });
    expect(stream.status).toBe(200);
    expect(stream.headers.get('content-type')).toContain('text/event-stream');
    const account = await createSandboxAccount(t.api, 'otp');
    const sessionId = await scrape(t.api, account.id);
    const reader = stream.body!.getReader();
    let text = '';
    const deadline = Date.now() + 10_000;
    while (!text.includes('event: assistance_required') && Date.now() < deadline) {
      const { value, done } = await reader.read();
      if (done) break;
      text += new TextDecoder().decode(value);
    }
    controller.abort();
    expect(text).toContain('event: assistance_required');
    expect(text).toContain(account.id);
    await pendingRequest(t.api, account.id);
    await t.api.post(`/v1/sessions/${sessionId}/cancel`);
    await sessionEnd(t.api, sessionId);
  });

  it('signs out, after which the token no longer works', async () => {
    const admin = await signIn('admin@otpilot.local', adminPassword);
    const out = await fetch(`${t.url}/auth/logout`, {
      method: 'POST',
      headers: { authorization: `Bearer ${admin.token}` },
    });
    expect(out.status).toBe(204);
    expect((await fetch(`${t.url}/me`, { headers: { authorization: `Bearer ${admin.token}` } })).status).toBe(401);
  });

  it('rate-limits sign-in attempts per address and email', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 11; i++) statuses.push((await login('nobody@example.org', 'guess')).status);
    expect(statuses.slice(0, 10).every((s) => s === 401)).toBe(true);
    expect(statuses[10]).toBe(429);
    // Another email from the same address still gets its own attempts.
    expect((await login('viewer@example.org', 'viewer-password-1')).status).toBe(200);
  });

  it('records sign-ins in the audit log, never the password', async () => {
    const entries = await t.server.store.db
      .selectFrom('audit_log')
      .selectAll()
      .where('action', '=', 'auth.login')
      .execute();
    expect(entries.some((e) => e.outcome === 'ok')).toBe(true);
    expect(entries.some((e) => e.outcome === 'wrong_password')).toBe(true);
    expect(JSON.stringify(entries)).not.toContain(adminPassword);
  });
});

describe('open event streams', () => {
  async function streamEnds(response: Response, timeoutMs = 8_000): Promise<boolean> {
    const reader = response.body!.getReader();
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const next = await Promise.race([
        reader.read(),
        new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), Math.max(0, deadline - Date.now()))),
      ]);
      if (next === 'timeout') {
        await reader.cancel();
        return false;
      }
      if (next.done) return true;
    }
  }

  it('end soon after the key is revoked or the user signs out', async () => {
    const { makeKeysService } = await import('../src/keys/service.js');
    const keys = makeKeysService({ db: t.server.store.db, clock: Date.now });
    const created = await keys.create({
      orgId: t.orgId,
      name: 'stream',
      scopes: 'status:read',
      accountIds: null,
      createdBy: null,
    });
    if (!created.ok) throw new Error(created.message);
    const byKey = await fetch(`${t.url}/v1/events`, { headers: { authorization: `Api-Key ${created.value.key}` } });
    expect(byKey.status).toBe(200);
    const keyEnded = streamEnds(byKey);
    await t.server.store.db
      .updateTable('api_keys')
      .set({ revoked_at: Date.now() })
      .where('id', '=', created.value.id)
      .execute();
    // (the server caches keys for 5 s; the stream's next check after that sees the revocation)
    expect(await keyEnded).toBe(true);

    const admin = await signIn('admin@otpilot.local', adminPassword);
    const bySession = await fetch(`${t.url}/events`, { headers: { authorization: `Bearer ${admin.token}` } });
    expect(bySession.status).toBe(200);
    const sessionEnded = streamEnds(bySession);
    await fetch(`${t.url}/auth/logout`, { method: 'POST', headers: { authorization: `Bearer ${admin.token}` } });
    expect(await sessionEnded).toBe(true);
  });
});

describe('two-factor sign-in (TOTP)', () => {
  async function call(token: string, method: string, path: string, body?: unknown) {
    const reply = await fetch(`${t.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    const text = await reply.text();
    return { status: reply.status, body: text ? JSON.parse(text) : null };
  }
  const loginWith = (body: Record<string, string>) =>
    fetch(`${t.url}/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });

  it('enrolls with a QR code, then needs a fresh code or a one-time backup code at sign-in', async () => {
    const { TOTP, Secret } = await import('otpauth');
    const admin = await signIn('admin@otpilot.local', adminPassword);
    const created = await call(admin.token, 'POST', '/users', {
      email: 'twofa@example.org',
      role: 'operator',
      password: 'twofa-password-1',
    });
    expect(created.status).toBe(201);
    const user = await signIn('twofa@example.org', 'twofa-password-1');
    expect((await call(user.token, 'GET', '/me/2fa')).body).toEqual({
      enabled: false,
      pending: false,
      backup_codes_left: 0,
    });

    // The password is needed: a stolen session cannot bind its own authenticator.
    expect((await call(user.token, 'POST', '/me/2fa/setup', { password: 'wrong-one' })).status).toBe(403);
    const setup = await call(user.token, 'POST', '/me/2fa/setup', { password: 'twofa-password-1' });
    expect(setup.status).toBe(200);
    expect(setup.body.otpauth_url).toMatch(/^otpauth:\/\/totp\/otpilot:twofa%40example\.org\?/);
    expect(setup.body.qr_svg).toMatch(/^<svg/);
    const totp = new TOTP({ secret: Secret.fromBase32(setup.body.secret) });
    // Until confirmed, sign-in is unchanged; a wrong confirmation changes nothing.
    expect((await loginWith({ email: 'twofa@example.org', password: 'twofa-password-1' })).status).toBe(200);
    expect((await call(user.token, 'POST', '/me/2fa/confirm', { code: '000000' })).status).toBe(400);
    const confirmCode = totp.generate();
    const confirmed = await call(user.token, 'POST', '/me/2fa/confirm', { code: confirmCode });
    expect(confirmed.status).toBe(200);
    const backups: string[] = confirmed.body.backup_codes;
    expect(backups).toHaveLength(10);
    expect(new Set(backups).size).toBe(10);
    expect((await call(user.token, 'POST', '/me/2fa/setup', { password: 'twofa-password-1' })).status).toBe(409);

    // The password alone is no longer enough; the error says what is missing (only after the password).
    const missing = await loginWith({ email: 'twofa@example.org', password: 'twofa-password-1' });
    expect(missing.status).toBe(401);
    expect(((await missing.json()) as any).error.details).toEqual([{ path: '/totp', message: expect.any(String) }]);
    const wrongPassword = await loginWith({ email: 'twofa@example.org', password: 'nope' });
    expect(((await wrongPassword.json()) as any).error.details).toBeUndefined();
    // The code used to confirm was spent: replaying it (the same string, even if a new 30 s step began) is refused.
    expect(
      (await loginWith({ email: 'twofa@example.org', password: 'twofa-password-1', totp: confirmCode })).status,
    ).toBe(401);
    // A backup code works once.
    const backup = await loginWith({ email: 'twofa@example.org', password: 'twofa-password-1', totp: backups[0]! });
    expect(backup.status).toBe(200);
    expect(
      (await loginWith({ email: 'twofa@example.org', password: 'twofa-password-1', totp: backups[0]! })).status,
    ).toBe(401);
    expect((await call(user.token, 'GET', '/me/2fa')).body).toMatchObject({ enabled: true, backup_codes_left: 9 });

    // Turning it off takes the password and a code; the secret never appears again.
    expect((await call(user.token, 'POST', '/me/2fa/disable', { password: 'wrong', code: backups[1]! })).status).toBe(
      403,
    );
    expect(
      (await call(user.token, 'POST', '/me/2fa/disable', { password: 'twofa-password-1', code: backups[1]! })).status,
    ).toBe(204);
    expect((await loginWith({ email: 'twofa@example.org', password: 'twofa-password-1' })).status).toBe(200);
    const audit = await call(admin.token, 'GET', '/audit?action=auth.2fa_enabled');
    expect(audit.body.data).toHaveLength(1);
    expect(JSON.stringify(audit.body)).not.toContain(setup.body.secret);
  });
});
