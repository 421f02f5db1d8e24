import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeKeysService } from '../src/keys/service.js';
import { latestCode, pendingRequest, scrape, sessionEnd, statusUntil } from './helpers/flows.js';
import { startTestServer, type TestServer } from './helpers/server.js';

/**
 * Browser-script connectors end to end: logins through the public API, run by the sandbox website's
 * bank script in real Chromium (one Chromium for the whole file: the runtime shares it across logins).
 */

let t: TestServer;
let adminKey: string;
const PASSWORD = 'pw-Very-Secret-4711';
let counter = 0;

beforeAll(async () => {
  t = await startTestServer({ sandboxBank: { webSlowMs: 100 } });
  const created = await makeKeysService({ db: t.server.store.db, clock: Date.now }).create({
    orgId: t.orgId,
    name: 'instance admin',
    scopes: 'instance:admin',
    accountIds: null,
    createdBy: null,
  });
  if (!created.ok) throw new Error(created.message);
  adminKey = created.value.key;
});
afterAll(async () => {
  await t?.close();
});

/** An account of the sandbox website for a fresh bank user behaving like `username`. */
async function webAccount(username: string, password = PASSWORD): Promise<{ id: string; username: string }> {
  const unique = `${username}+web${process.pid}x${++counter}`;
  const reply = await t.api.post('/v1/accounts', {
    bank_id: 'sandbox-web',
    name: `Web ${unique}`,
    credentials: { username: unique, password },
  });
  expect(reply.status, JSON.stringify(reply.body)).toBe(201);
  return { id: reply.body.id, username: unique };
}

/** A browser login's run: the script version and, after a failure, its evidence. */
async function runOf(sessionId: string) {
  const reply = await t.api.get(`/v1/sessions/${sessionId}/browser`);
  expect(reply.status, JSON.stringify(reply.body)).toBe(200);
  return reply.body;
}

describe('a browser login through the API', () => {
  it('pauses for the SMS code, takes a wrong code then the right one from the External API, and stores the data', async () => {
    const account = await webAccount('otp');
    const sessionId = await scrape(t.api, account.id);
    const request = await pendingRequest(t.api, account.id);
    expect(request).toMatchObject({ max_attempts: 2, descriptor: { length: 6, type: 'numeric', purpose: 'login' } });
    expect(request.descriptor.prompt).toMatch(/^Enter the code we sent to •••• \d{4}$/);

    const code = await latestCode(t.api, account.username);
    const wrong = code === '000000' ? '111111' : '000000';
    const rejected = await t.api.post(`/v1/accounts/${account.id}/otp?wait=true`, { code: wrong, request_id: request.id });
    expect(rejected.body).toMatchObject({ outcome: 'rejected' });
    await pendingRequest(t.api, account.id);
    const accepted = await t.api.post(`/v1/accounts/${account.id}/otp?wait=true`, { code, request_id: request.id });
    expect(accepted.body).toMatchObject({ outcome: 'accepted' });

    const session = await sessionEnd(t.api, sessionId, 60_000);
    expect(session.state, JSON.stringify(session)).toBe('succeeded');
    // Two ledgers of 90 days, three movements a day each, read over several pages of the table.
    expect(session.movements_new).toBeGreaterThan(400);
    expect(session.stages.map((s: { name: string }) => s.name)).toEqual(
      expect.arrayContaining(['script 1.0.0', 'code', 'awaiting_assistance', 'logged_in', 'movements', 'succeeded']),
    );
    const run = await runOf(sessionId);
    expect(run).toMatchObject({ bank_id: 'sandbox-web', script_version: '1.0.0', failed_at: null, html: null });
    const movements = await t.api.get(`/v1/accounts/${account.id}/movements?limit=5`);
    expect(movements.status).toBe(200);
    expect(movements.body.data[0]).toMatchObject({ currency: 'EUR' });
  });
});
