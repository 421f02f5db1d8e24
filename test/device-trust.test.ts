import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeKeysService } from '../src/keys/service.js';
import { auditOf, createSandboxAccount, latestCode, pendingRequest, scrape, sessionEnd } from './helpers/flows.js';
import { startTestServer, type TestServer } from './helpers/server.js';

/*
 * Device trust as operators see it: the expiry the connector reported, forgetting the trust (the next
 * login asks for a code again), and a login the bank still challenged despite stored trust. The sandbox
 * `trust` user's tokens last an hour of the shared clock here.
 */

const HOUR = 3_600_000;
const clock = { offset: 0, now: () => Date.now() + clock.offset };
let t: TestServer;

beforeAll(async () => {
  t = await startTestServer({ clock: clock.now, sandboxBank: { now: clock.now, trustValidityMs: HOUR } });
});
afterAll(async () => {
  await t?.close();
});

/** A scrape that the bank answers with a code request, which the test answers from the phone. */
async function loginWithCode(account: { id: string; username: string }): Promise<void> {
  const sessionId = await scrape(t.api, account.id);
  const request = await pendingRequest(t.api, account.id);
  const code = await latestCode(t.api, account.username);
  const sent = await t.api.post(`/v1/accounts/${account.id}/otp?wait=true`, { code, request_id: request.id });
  expect(sent.status).toBe(200);
  expect(await sessionEnd(t.api, sessionId)).toMatchObject({ state: 'succeeded' });
}

async function loginWithoutCode(accountId: string): Promise<void> {
  expect(await sessionEnd(t.api, await scrape(t.api, accountId))).toMatchObject({ state: 'succeeded' });
}

const accountOf = async (id: string) => (await t.api.get(`/v1/accounts/${id}`)).body;

describe('device trust', () => {
  it('shows its expiry, can be forgotten, and records a bank that challenged despite it', async () => {
    const account = await createSandboxAccount(t.api, 'trust');
    await loginWithCode(account);
    const trusted = await accountOf(account.id);
    expect(Date.parse(trusted.trust_expires_at) - clock.now()).toBeGreaterThan(HOUR - 60_000);
    expect(trusted.trust_challenged_at).toBeNull();
    await loginWithoutCode(account.id);

    // Forgotten by an operator: the next login needs a code (and that is no challenge "despite trust").
    const forgotten = await t.api.delete(`/v1/accounts/${account.id}/trust`);
    expect(forgotten.status).toBe(200);
    expect(forgotten.body).toMatchObject({ id: account.id, trust_expires_at: null });
    expect(await auditOf(t.server.store.db, account.id, 'account.trust.forget')).toHaveLength(1);
    await loginWithCode(account);
    expect((await accountOf(account.id)).trust_challenged_at).toBeNull();

    // The bank stops honouring the stored token: the login is challenged anyway, and that is recorded.
    clock.offset += 2 * HOUR;
    const before = clock.now();
    await loginWithCode(account);
    const challenged = await accountOf(account.id);
    expect(Date.parse(challenged.trust_challenged_at)).toBeGreaterThanOrEqual(before - 1000);
    // The new code brought a new token.
    expect(Date.parse(challenged.trust_expires_at)).toBeGreaterThan(clock.now());
  });

  it('forgetting trust needs accounts:write and a known account', async () => {
    const account = await createSandboxAccount(t.api, 'trust');
    const keys = makeKeysService({ db: t.server.store.db, clock: Date.now });
    const reader = await keys.create({
      orgId: t.orgId,
      name: 'reader',
      scopes: 'accounts:read',
      accountIds: null,
      createdBy: null,
    });
    if (!reader.ok) throw new Error(reader.message);
    const refused = await t.api.delete(`/v1/accounts/${account.id}/trust`, undefined, reader.value.key);
    expect(refused.status).toBe(403);
    const missing = await t.api.delete('/v1/accounts/acc_nope/trust');
    expect(missing.status).toBe(404);
    expect(missing.body.error.code).toBe('NOT_FOUND');
  });
});
