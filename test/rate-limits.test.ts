import { afterEach, describe, expect, it } from 'vitest';
import { makeKeysService } from '../src/keys/service.js';
import { latestCode, pendingRequest, scrape, sessionEnd, startAssistedLogin } from './helpers/flows.js';
import { startTestServer, type TestServer } from './helpers/server.js';

/*
 * The code budget (OTPILOT_CODE_RATE_LIMIT, counted in the store): codes handed to the bank count
 * against the account on every path; refused submissions count against their sender only.
 */

let t: TestServer | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

async function signIn(server: TestServer): Promise<string> {
  const reply = await fetch(`${server.url}/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email: 'admin@otpilot.local', password: server.server.bootstrap!.adminPassword }),
  });
  expect(reply.status).toBe(200);
  return ((await reply.json()) as { token: string }).token;
}

describe('the code budget', () => {
  it('charges malformed codes to their sender, so another client’s right code still gets through', async () => {
    t = await startTestServer({ env: { OTPILOT_CODE_RATE_LIMIT: '3' } });
    const { api } = t;
    const noisy = await makeKeysService({ db: t.server.store.db, clock: Date.now }).create({
      orgId: t.orgId,
      name: 'noisy',
      scopes: 'otp:write',
      accountIds: null,
      createdBy: null,
    });
    if (!noisy.ok) throw new Error(noisy.message);
    const { account, request } = await startAssistedLogin(api);
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) {
      const reply = await api.post(`/v1/accounts/${account.id}/otp`, { code: 'x' }, noisy.value.key);
      statuses.push(reply.status);
      if (reply.status === 429) {
        expect(reply.body.error.code).toBe('RATE_LIMITED');
        expect(Number(reply.headers.get('retry-after'))).toBeGreaterThan(0);
      }
    }
    expect(statuses).toEqual([422, 422, 422, 429, 429]);
    // The noisy sender is slowed down; the account is not.
    const right = await api.post(`/v1/accounts/${account.id}/otp?wait=true`, {
      code: await latestCode(api, account.username),
      request_id: request.id,
    });
    expect(right.body.outcome, JSON.stringify(right.body)).toBe('accepted');
  });

  it('counts the codes that reach the bank per account, across the API and the dashboard', async () => {
    t = await startTestServer({ env: { OTPILOT_CODE_RATE_LIMIT: '2' } });
    const { api } = t;
    const token = await signIn(t);
    const { account, sessionId } = await startAssistedLogin(api);
    const wrong = (code: string) => (code[0] === '9' ? `1${code.slice(1)}` : `9${code.slice(1)}`);
    const real = await latestCode(api, account.username);
    // One wrong code over the API, one through the dashboard's own path: both reach the bank.
    const first = await api.post(`/v1/accounts/${account.id}/otp?wait=true`, { code: wrong(real) });
    expect(first.body.outcome).toBe('rejected');
    const second = await api.raw(`/accounts/${account.id}/otp?wait=true`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ code: wrong(real) }),
    });
    expect(second.body.outcome, JSON.stringify(second.body)).toBe('rejected');
    expect((await sessionEnd(api, sessionId)).failure_category).toBe('attempts_exhausted');

    // A new login asks again; this minute's two codes for the account are spent.
    const next = await scrape(api, account.id);
    await pendingRequest(api, account.id);
    const third = await api.post(`/v1/accounts/${account.id}/otp`, { code: await latestCode(api, account.username) });
    expect(third.status).toBe(429);
    expect(third.body.error.code).toBe('RATE_LIMITED');
    const audit = await t.server.store.db
      .selectFrom('audit_log')
      .select(['outcome', 'details'])
      .where('account_id', '=', account.id)
      .where('action', '=', 'otp.submit')
      .execute();
    expect(audit.map((a) => a.outcome)).toContain('rate_limited');
    // Dashboard submissions are audited as such.
    expect(audit.some((a) => a.outcome === 'submitted' && a.details?.includes('"via":"dashboard"'))).toBe(true);
    await api.post(`/v1/sessions/${next}/cancel`);
  });
});

describe('sign-in limits', () => {
  it('limit one address across every email it tries, counted in the store', async () => {
    t = await startTestServer();
    const server = t;
    const attempt = (email: string) =>
      fetch(`${server.url}/auth/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ email, password: 'guess' }),
      });
    const statuses: number[] = [];
    for (let i = 0; i < 61; i++) statuses.push((await attempt(`person${i}@example.org`)).status);
    expect(statuses.slice(0, 60).every((s) => s === 401)).toBe(true);
    const refused = await attempt('someone-else@example.org');
    expect(refused.status).toBe(429);
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe('RATE_LIMITED');
    expect(statuses[60]).toBe(429);
    const counted = await server.server.store.db
      .selectFrom('rate_limits')
      .select(['key', 'hits'])
      .where('key', 'like', 'login-address:%')
      .execute();
    expect(counted.reduce((sum, row) => sum + Number(row.hits), 0)).toBeGreaterThanOrEqual(61);
    // Every refused sign-in still checks a password hash (unknown emails too, so timing tells
    // nothing): 61 deliberate hashes take long on a busy machine.
  }, 120_000);
});
