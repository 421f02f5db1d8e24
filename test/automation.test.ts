import { afterEach, describe, expect, it } from 'vitest';
import { warnExpiringTrust } from '../src/engine/trust.js';
import {
  createSandboxAccount,
  eventually,
  latestCode,
  nextEvent,
  pendingRequest,
  scrape,
  sessionEnd,
  statusUntil,
} from './helpers/flows.js';
import { startTestServer, type TestServer } from './helpers/server.js';

const DAY = 86_400_000;
let t: TestServer | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

async function requestsOf(server: TestServer, accountId: string): Promise<any[]> {
  return (await server.api.get(`/v1/assistance-requests?account_id=${accountId}`)).body.data;
}

/** Signs a dashboard user in and returns their bearer token. */
async function signIn(server: TestServer, email: string, password: string): Promise<string> {
  const reply = await server.api.raw('/auth/login', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email, password }),
  });
  expect(reply.status, JSON.stringify(reply.body)).toBe(200);
  return reply.body.token;
}

async function signOut(server: TestServer, token: string): Promise<void> {
  const reply = await server.api.raw('/auth/logout', { method: 'POST', headers: { authorization: `Bearer ${token}` } });
  expect(reply.status).toBe(204);
}

describe('fail fast (on_no_code_source)', () => {
  it('fails a login at once when nothing could give its code, and waits when something could', async () => {
    t = await startTestServer();
    const { api } = t;
    const account = await createSandboxAccount(api, 'otp', { on_no_code_source: 'fail' });
    expect((await api.get(`/v1/accounts/${account.id}/config`)).body.on_no_code_source).toBe('fail');

    // Nobody signed in, no relay, no TOTP secret.
    const alone = await sessionEnd(api, await scrape(api, account.id));
    expect(alone).toMatchObject({ state: 'failed', failure_category: 'assistance_unavailable' });
    expect(alone.failure_message).toContain('on_no_code_source');
    expect(await requestsOf(t, account.id)).toEqual([]);

    // A viewer cannot type a code: still nobody.
    const admin = await signIn(t, 'admin@otpilot.local', t.server.bootstrap!.adminPassword);
    const created = await api.raw('/users', {
      method: 'POST',
      headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
      body: JSON.stringify({ email: 'viewer@example.org', role: 'viewer', password: 'viewer-password-1' }),
    });
    expect(created.status).toBe(201);
    await signOut(t, admin);
    await signIn(t, 'viewer@example.org', 'viewer-password-1');
    expect((await sessionEnd(api, await scrape(api, account.id))).failure_category).toBe('assistance_unavailable');

    // An operator (here the admin) signed in: the login waits for them.
    const present = await signIn(t, 'admin@otpilot.local', t.server.bootstrap!.adminPassword);
    const waiting = await scrape(api, account.id);
    await pendingRequest(api, account.id);
    await api.post(`/v1/sessions/${waiting}/cancel`);
    expect((await sessionEnd(api, waiting)).state).toBe('cancelled');
    await signOut(t, present);

    // An SMS relay that serves the account's number: the login waits for the SMS.
    expect((await api.post('/v1/relays', { provider: 'json' })).status).toBe(201);
    expect((await sessionEnd(api, await scrape(api, account.id))).failure_category).toBe('assistance_unavailable');
    await api.put(`/v1/accounts/${account.id}/config`, { otp_phone: '+31612345678' });
    const relayed = await scrape(api, account.id);
    await pendingRequest(api, account.id);
    await api.post(`/v1/sessions/${relayed}/cancel`);
    expect((await sessionEnd(api, relayed)).state).toBe('cancelled');
  });

  it('counts TOTP for authenticator prompts, and never an SMS relay for them', async () => {
    t = await startTestServer();
    const { api } = t;
    expect((await api.post('/v1/relays', { provider: 'json' })).status).toBe(201);
    const withSecret = await createSandboxAccount(api, 'totp', {
      on_no_code_source: 'fail',
      totp_secret: 'JBSWY3DPEHPK3PXP',
    });
    expect((await sessionEnd(api, await scrape(api, withSecret.id))).state).toBe('succeeded');
    const withoutSecret = await createSandboxAccount(api, 'totp', {
      on_no_code_source: 'fail',
      otp_phone: '+31612345678',
    });
    expect((await sessionEnd(api, await scrape(api, withoutSecret.id))).failure_category).toBe(
      'assistance_unavailable',
    );
  });
});

describe('trust', () => {
  it('skips the code while the bank trusts the login, warns ahead of the end, and asks again after it', async () => {
    let offset = 0;
    const clock = () => Date.now() + offset;
    t = await startTestServer({ clock, sandboxBank: { now: clock }, env: { OTPILOT_TRUST_WARNING_HOURS: '72' } });
    const { api } = t;
    const account = await createSandboxAccount(api, 'trust');
    expect((await api.get(`/v1/accounts/${account.id}`)).body.trust_expires_at).toBeNull();

    // First login: a code, which makes the bank trust this login for 30 days.
    const first = await scrape(api, account.id);
    await pendingRequest(api, account.id);
    const before = clock();
    const code = await latestCode(api, account.username);
    expect((await api.post(`/v1/accounts/${account.id}/otp?wait=true`, { code })).body.outcome).toBe('accepted');
    expect((await sessionEnd(api, first)).state).toBe('succeeded');
    const trusted = (await api.get(`/v1/accounts/${account.id}`)).body;
    const expiresAt = Date.parse(trusted.trust_expires_at);
    expect(expiresAt).toBeGreaterThanOrEqual(before + 30 * DAY);
    expect(expiresAt).toBeLessThanOrEqual(clock() + 30 * DAY);
    expect((await statusUntil(api, account.id, () => true)).trust_expires_at).toBe(trusted.trust_expires_at);

    // Second login: no code asked.
    expect((await sessionEnd(api, await scrape(api, account.id))).state).toBe('succeeded');
    expect(await requestsOf(t, account.id)).toHaveLength(1);

    // Three days before the end, the scheduler tick warns, once for this token.
    offset += expiresAt - clock() - 2.5 * DAY;
    const warning = await nextEvent(t, 'trust_expiring', account.id);
    expect(warning).toMatchObject({ status: 'trust.expiring', data: { expires_at: trusted.trust_expires_at } });
    const again = await warnExpiringTrust({
      db: t.server.store.db,
      transact: t.server.transact,
      clock,
      leadMs: 3 * DAY,
    });
    expect(again).toBe(0);

    // After the end, the bank asks for a code again; the new code brings new trust (and a new warning to come).
    offset += 3 * DAY;
    const third = await scrape(api, account.id);
    const request = await pendingRequest(api, account.id);
    expect(request.type).toBe('otp');
    const fresh = await latestCode(api, account.username);
    expect((await api.post(`/v1/accounts/${account.id}/otp?wait=true`, { code: fresh })).body.outcome).toBe('accepted');
    expect((await sessionEnd(api, third)).state).toBe('succeeded');
    const renewed = await t.server.store.db
      .selectFrom('accounts')
      .select(['trust_expires_at', 'trust_warned_at'])
      .where('id', '=', account.id)
      .executeTakeFirstOrThrow();
    expect(renewed.trust_expires_at).toBeGreaterThan(expiresAt + 2 * DAY);
    expect(renewed.trust_warned_at).toBeNull();
  });
});

describe('decoupled approval', () => {
  it('waits as an approval request that takes no code, and continues when the phone approves', async () => {
    t = await startTestServer();
    const { api } = t;
    const account = await createSandboxAccount(api, 'approve');
    const sessionId = await scrape(api, account.id);
    const request = await pendingRequest(api, account.id);
    expect(request).toMatchObject({
      type: 'approval',
      state: 'pending',
      descriptor: { purpose: 'login', prompt: 'Approve this login in the SandboxBank app on your phone' },
      attempts: 0,
      max_attempts: 0,
    });
    expect(request.descriptor).not.toHaveProperty('length');
    expect((await nextEvent(t, 'assistance_required', account.id)).data).toMatchObject({
      id: request.id,
      type: 'approval',
    });
    expect((await api.get(`/v1/accounts/${account.id}/status`)).body).toMatchObject({
      status: 'awaiting_assistance',
      pending_assistance: { id: request.id, type: 'approval' },
    });

    const refused = await api.post(`/v1/accounts/${account.id}/otp`, { code: '123456' });
    expect(refused.status).toBe(409);
    expect(refused.body).toEqual({ error: { code: 'CONFLICT', message: expect.stringContaining('approv') } });

    const approved = await api.post(
      `/sandbox-bank/phone/${encodeURIComponent(account.username)}/approve`,
      undefined,
      null,
    );
    expect(approved.status).toBe(200);
    expect((await sessionEnd(api, sessionId)).state).toBe('succeeded');
    const [done] = await requestsOf(t, account.id);
    expect(done).toMatchObject({ id: request.id, state: 'fulfilled', resolution: { via: null, reason: 'approved' } });
    expect((await nextEvent(t, 'assistance_fulfilled', account.id)).data).toEqual({
      id: request.id,
      reason: 'approved',
      via: null,
    });
  });

  it('expires at the deadline and fails the session; the bank stops waiting too', async () => {
    t = await startTestServer();
    const { api } = t;
    const account = await createSandboxAccount(api, 'approve', { assist_timeout_seconds: 1 });
    const session = await sessionEnd(api, await scrape(api, account.id));
    expect(session).toMatchObject({ state: 'failed', failure_category: 'assistance_expired' });
    const [expired] = await requestsOf(t, account.id);
    expect(expired).toMatchObject({ type: 'approval', state: 'expired', resolution: { reason: 'deadline' } });
    expect((await nextEvent(t, 'assistance_expired', account.id)).data).toEqual({ id: expired.id, reason: 'deadline' });
    // The connector gave the challenge back: the phone has nothing left to approve.
    await eventually(
      () => api.get(`/sandbox-bank/phone/${encodeURIComponent(account.username)}`, null),
      (r) => r.body.pending_approval === null,
    );
  });
});
