import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from './helpers/server.js';

let t: TestServer;
let admin: string;

async function signIn(email: string, password: string): Promise<string> {
  const reply = await fetch(`${t.url}/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email, password }),
  });
  expect(reply.status).toBe(200);
  return ((await reply.json()) as { token: string }).token;
}

async function call(token: string, method: string, path: string, body?: unknown) {
  const reply = await fetch(`${t.url}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await reply.text();
  return { status: reply.status, body: text ? JSON.parse(text) : null };
}

beforeAll(async () => {
  t = await startTestServer();
  admin = await signIn('admin@otpilot.local', t.server.bootstrap!.adminPassword);
});
afterAll(async () => {
  await t?.close();
});

describe('users (admin)', () => {
  it('adds users with a one-time temporary password, refuses duplicates, and lists them', async () => {
    const created = await call(admin, 'POST', '/users', { email: 'Op@Example.org', role: 'operator' });
    expect(created.status).toBe(201);
    expect(created.body.user).toMatchObject({ email: 'op@example.org', role: 'operator' });
    expect(created.body.temporary_password).toMatch(/^\S{16}$/);
    const operator = await signIn('op@example.org', created.body.temporary_password);
    expect((await call(operator, 'GET', '/me')).body.user.role).toBe('operator');
    expect((await call(admin, 'POST', '/users', { email: 'op@example.org', role: 'viewer' })).status).toBe(409);
    expect((await call(admin, 'POST', '/users', { email: 'not-an-email', role: 'viewer' })).status).toBe(400);
    const list = await call(admin, 'GET', '/users');
    expect(list.body.data.map((u: any) => u.email)).toEqual(['admin@otpilot.local', 'op@example.org']);
    expect(JSON.stringify(list.body)).not.toContain('password');
    // Only admins manage users.
    expect((await call(operator, 'GET', '/users')).status).toBe(403);
    expect((await call(operator, 'POST', '/users', { email: 'x@example.org', role: 'admin' })).status).toBe(403);
  });
});

describe('my API keys', () => {
  it('shows a new key once, never grants more than the role has, and revokes it', async () => {
    await call(admin, 'POST', '/users', { email: 'viewer@example.org', role: 'viewer', password: 'viewer-password-2' });
    const viewer = await signIn('viewer@example.org', 'viewer-password-2');
    const escalate = await call(viewer, 'POST', '/me/api-keys', { name: 'relay', scopes: ['otp:write'] });
    expect(escalate.status).toBe(403);
    const created = await call(viewer, 'POST', '/me/api-keys', {
      name: 'reader',
      scopes: ['*'],
      account_ids: [t.tourAccountId],
    });
    expect(created.status).toBe(201);
    expect(created.body.key).toMatch(/^otpk_/);
    expect(created.body.scopes).toEqual([
      'accounts:read',
      'status:read',
      'otp:read',
      'data:read',
      'webhooks:read',
      'reconcile:read',
    ]);

    // The key works on /v1 within its account, and the listing never shows it again.
    const status = await fetch(`${t.url}/v1/accounts/${t.tourAccountId}/status`, {
      headers: { authorization: `Api-Key ${created.body.key}` },
    });
    expect(status.status).toBe(200);
    const mine = await call(viewer, 'GET', '/me/api-keys');
    expect(mine.body.data.map((k: any) => k.id)).toEqual([created.body.id]);
    expect(JSON.stringify(mine.body)).not.toContain(created.body.key);
    // Admins see every key of the organization (the bootstrap key too).
    expect((await call(admin, 'GET', '/me/api-keys')).body.data.length).toBeGreaterThanOrEqual(2);

    const bootstrapKeyId = (await call(admin, 'GET', '/me/api-keys')).body.data.find(
      (k: any) => k.name === 'bootstrap',
    ).id;
    expect((await call(viewer, 'DELETE', `/me/api-keys/${bootstrapKeyId}`)).status).toBe(403);
    expect((await call(viewer, 'DELETE', `/me/api-keys/${created.body.id}`)).status).toBe(204);
    const after = await fetch(`${t.url}/v1/accounts/${t.tourAccountId}/status`, {
      headers: { authorization: `Api-Key ${created.body.key}` },
    });
    expect(after.status).toBe(401);
  });
});

describe('audit log', () => {
  it('lists who did what for admins only, newest first, without secrets', async () => {
    const log = await call(admin, 'GET', '/audit?limit=100');
    expect(log.status).toBe(200);
    const actions = log.body.data.map((e: any) => e.action);
    expect(actions).toEqual(expect.arrayContaining(['auth.login', 'user.create', 'api_key.create', 'api_key.revoke']));
    const ids = log.body.data.map((e: any) => e.id);
    expect(ids).toEqual([...ids].sort().reverse());
    expect(JSON.stringify(log.body)).not.toContain('viewer-password-2');
    const filtered = await call(admin, 'GET', '/audit?action=user.create');
    expect(filtered.body.data.length).toBeGreaterThan(0);
    expect(filtered.body.data.length).toBeLessThan(log.body.data.length);
    expect(filtered.body.data.every((e: any) => e.action === 'user.create')).toBe(true);
    const viewer = await signIn('viewer@example.org', 'viewer-password-2');
    expect((await call(viewer, 'GET', '/audit')).status).toBe(403);
  });
});
