import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newId } from '../src/core/ids.js';
import { makeKeysService } from '../src/keys/service.js';
import { makeApi } from './helpers/api.js';
import { createSandboxAccount, latestCode, scrape, sessionEnd } from './helpers/flows.js';
import { startTestServer, type TestServer } from './helpers/server.js';
import { startIntegratorPage, widgetCall } from './helpers/widget.js';

/**
 * The Lean-style flow: data calls, results, reconnects through the widget's endpoints, app tokens,
 * and the sandbox's corporate policy (a code only when the last login is older than 5 minutes). The
 * widget in Chromium is in reconnect-widget.test.ts.
 */

let t: TestServer;
let integrator: { origin: string; close(): void };
let integratorOrigin: string;
let appToken: string;

beforeAll(async () => {
  t = await startTestServer();
  integrator = await startIntegratorPage(t.url);
  integratorOrigin = integrator.origin;
  const token = await t.api.post('/v1/app-tokens', { name: 'Acme Books', allowed_origins: [integratorOrigin] });
  expect(token.status).toBe(201);
  expect(token.body.token).toMatch(/^otpa_/);
  appToken = token.body.token;
});
afterAll(async () => {
  integrator?.close();
  await t?.close();
});

const widget = (method: string, path: string, options?: Parameters<typeof widgetCall>[4]) =>
  widgetCall(t.api, appToken, method, path, options);

describe('data API from stored data', () => {
  it('answers identity, bank accounts, balances and filtered transactions at once, in the envelope', async () => {
    const account = await createSandboxAccount(t.api, 'alice');
    expect((await sessionEnd(t.api, await scrape(t.api, account.id))).state).toBe('succeeded');
    const started = Date.now();
    const identity = await t.api.get(`/v1/accounts/${account.id}/identity`);
    expect(identity.status).toBe(200);
    expect(identity.body).toMatchObject({
      status: 'OK',
      message: 'data ready',
      payload: { identity: { name: expect.any(String) } },
    });
    expect(identity.body.results_id).toMatch(/^res_/);
    expect(Date.parse(identity.body.timestamp)).toBeGreaterThan(0);
    const ledgers = (await t.api.get(`/v1/accounts/${account.id}/bank-accounts`)).body.payload.accounts;
    expect(ledgers.length).toBeGreaterThan(0);
    expect(ledgers[0]).toMatchObject({ id: expect.stringMatching(/^bac_/), currency: expect.any(String) });
    const balances = (await t.api.get(`/v1/accounts/${account.id}/balances?bank_account_id=${ledgers[0].id}`)).body;
    expect(balances.payload.balances).toEqual([
      expect.objectContaining({ bank_account_id: ledgers[0].id, current: expect.stringMatching(/^-?\d+\.\d{2}$/) }),
    ]);
    const all = (await t.api.get(`/v1/accounts/${account.id}/transactions?limit=500`)).body.payload.transactions;
    expect(all.length).toBeGreaterThan(3);
    const page = (await t.api.get(`/v1/accounts/${account.id}/transactions?limit=2`)).body.payload;
    expect(page.transactions).toEqual(all.slice(0, 2));
    const next = (await t.api.get(`/v1/accounts/${account.id}/transactions?limit=2&cursor=${page.next_cursor}`)).body;
    expect(next.payload.transactions).toEqual(all.slice(2, 4));
    const day = all[0].booked_at.slice(0, 10);
    const oneDay = (await t.api.get(`/v1/accounts/${account.id}/transactions?from=${day}&to=${day}&limit=500`)).body;
    expect(oneDay.payload.transactions.length).toBeGreaterThan(0);
    expect(oneDay.payload.transactions.every((m: any) => m.booked_at.startsWith(day))).toBe(true);
    expect(oneDay.payload.transactions).toEqual(all.filter((m: any) => m.booked_at.startsWith(day)));
    // …and by ledger: exactly that ledger's movements.
    const ledger = all[0].bank_account_id;
    const byLedger = (await t.api.get(`/v1/accounts/${account.id}/transactions?bank_account_id=${ledger}&limit=500`))
      .body.payload.transactions;
    expect(byLedger.length).toBeGreaterThan(0);
    expect(byLedger.every((m: any) => m.bank_account_id === ledger)).toBe(true);
    expect(all.some((m: any) => m.bank_account_id !== ledger)).toBe(true);
    // Stored data answers without a bank login.
    expect((await t.api.get(`/v1/accounts/${account.id}/sessions`)).body.data).toHaveLength(1);
    expect(Date.now() - started).toBeLessThan(10_000);
    // The same envelope by id.
    const again = await t.api.get(`/v1/results/${identity.body.results_id}`);
    expect(again.body).toMatchObject({
      status: 'OK',
      results_id: identity.body.results_id,
      payload: identity.body.payload,
    });

    expect((await t.api.get(`/v1/accounts/${account.id}/transactions?from=yesterday`)).status).toBe(400);
    expect((await t.api.get(`/v1/accounts/${account.id}/transactions?cursor=nonsense`)).status).toBe(400);
    expect((await t.api.get(`/v1/accounts/${account.id}/balances?refresh=maybe`)).status).toBe(400);
    expect((await t.api.get('/v1/accounts/acc_unknown/identity')).status).toBe(404);
    expect((await t.api.get('/v1/results/res_unknown')).status).toBe(404);
  });

  it('needs no reconnect when otpilot answers the code itself (TOTP)', async () => {
    const account = await createSandboxAccount(t.api, 'totp', { totp_secret: 'JBSWY3DPEHPK3PXP' });
    const reply = await t.api.get(`/v1/accounts/${account.id}/balances?refresh=true`);
    expect(reply.body.status).toBe('OK');
    expect(
      await t.server.store.db.selectFrom('reconnects').select('id').where('account_id', '=', account.id).execute(),
    ).toEqual([]);
  });

  it('answers FAILED when the live login fails', async () => {
    const account = await createSandboxAccount(t.api, 'locked');
    const reply = await t.api.get(`/v1/accounts/${account.id}/balances?refresh=true`);
    expect(reply.body).toMatchObject({ status: 'FAILED', payload: null });
    expect(reply.body.message).toMatch(/account_locked|locked/);
  });
});

describe('reconnect (corporate bank policy)', { timeout: 90_000 }, () => {
  it('starts a new login when the old one’s code window has passed', async () => {
    const account = await createSandboxAccount(t.api, 'otp', { assist_timeout_seconds: 1 });
    const call = await t.api.get(`/v1/accounts/${account.id}/identity?refresh=true`);
    expect(call.body.status).toBe('RECONNECT_REQUIRED');
    const id = call.body.payload.reconnect_id;
    const first = (await widget('GET', id)).body;
    expect(first).toMatchObject({ state: 'code_needed', account: { bank: 'Sandbox Bank' } });
    const firstSession = (await t.api.get(`/v1/accounts/${account.id}/sessions`)).body.data[0].id;
    expect((await sessionEnd(t.api, firstSession)).failure_category).toBe('assistance_expired');

    const stale = await widget('GET', id);
    expect(stale.body.state).toBe('login_needed');
    expect(stale.body.message).toMatch(/code window closed/);
    // The result waits for the reconnect rather than failing.
    expect((await t.api.get(`/v1/results/${call.body.results_id}`)).body.status).toBe('RECONNECT_REQUIRED');
    // A wider window for the new login, then start it from the widget.
    await t.api.put(`/v1/accounts/${account.id}/config`, { assist_timeout_seconds: 300 });
    const started = await widget('POST', `${id}/start`);
    expect(started.status).toBe(200);
    await expect.poll(async () => (await widget('GET', id)).body.state, { timeout: 15_000 }).toBe('code_needed');
    const view = (await widget('GET', id)).body;
    expect(view.request.id).not.toBe(first.request.id);
    const sessions = (await t.api.get(`/v1/accounts/${account.id}/sessions`)).body.data;
    expect(sessions).toHaveLength(2);

    const wrong = await widget('POST', `${id}/code`, { body: { code: '12' } });
    expect(wrong.status).toBe(422);
    const answer = await widget('POST', `${id}/code`, { body: { code: await latestCode(t.api, account.username) } });
    expect(answer.body.outcome).toBe('accepted');
    await expect
      .poll(async () => (await t.api.get(`/v1/results/${call.body.results_id}`)).body.status, { timeout: 15_000 })
      .toBe('OK');
    expect((await widget('GET', id)).body.state).toBe('completed');
  });

  it('keeps app tokens to reconnects: no data, no other organization, only allowed origins', async () => {
    const account = await createSandboxAccount(t.api, 'corporate');
    const call = await t.api.get(`/v1/accounts/${account.id}/balances?refresh=true`);
    expect(call.body.status).toBe('RECONNECT_REQUIRED');
    const id = call.body.payload.reconnect_id;

    // Not an API key: the data and code routes refuse it in every form.
    for (const headers of [
      { authorization: `Api-Key ${appToken}` } as Record<string, string>,
      { authorization: `Bearer ${appToken}` },
      { 'x-api-key': appToken },
    ]) {
      expect((await t.api.raw(`/v1/accounts/${account.id}/balances`, { headers })).status).toBe(401);
      expect((await t.api.raw(`/v1/results/${call.body.results_id}`, { headers })).status).toBe(401);
    }
    expect((await t.api.post(`/v1/accounts/${account.id}/otp`, { code: '123456' }, appToken)).status).toBe(401);
    expect((await t.api.get('/v1/accounts', appToken)).status).toBe(401);
    // The dashboard does not take it either.
    expect((await t.api.raw('/accounts', { headers: { authorization: `Bearer ${appToken}` } })).status).toBe(401);

    // Another organization's token cannot see or act on this reconnect.
    const orgId = newId('org');
    await t.server.store.db
      .insertInto('organizations')
      .values({ id: orgId, name: 'Other', created_at: Date.now() })
      .execute();
    const keys = makeKeysService({ db: t.server.store.db, clock: Date.now });
    const otherKey = await keys.create({ orgId, name: 'other', scopes: '*', accountIds: null, createdBy: null });
    if (!otherKey.ok) throw new Error(otherKey.message);
    const otherApi = makeApi(t.url, otherKey.value.key);
    const otherToken = (await otherApi.post('/v1/app-tokens', { name: 'Other', allowed_origins: [integratorOrigin] }))
      .body.token;
    expect((await widget('GET', id, { token: otherToken })).status).toBe(404);
    expect((await widget('POST', `${id}/start`, { token: otherToken })).status).toBe(404);
    expect((await widget('POST', `${id}/code`, { token: otherToken, body: { code: '123456' } })).status).toBe(404);
    expect((await otherApi.get(`/v1/results/${call.body.results_id}`)).status).toBe(404);
    expect((await widget('GET', id, { token: 'otpa_nonsense' })).status).toBe(401);

    // CORS: an allowed origin gets the header; another origin is refused and gets none.
    const allowed = await widget('GET', id, { origin: integratorOrigin });
    expect(allowed.status).toBe(200);
    expect(allowed.headers.get('access-control-allow-origin')).toBe(integratorOrigin);
    const foreign = await widget('GET', id, { origin: 'http://evil.example' });
    expect(foreign.status).toBe(403);
    expect(foreign.headers.get('access-control-allow-origin')).toBeNull();
    const code = await widget('POST', `${id}/code`, { origin: 'http://evil.example', body: { code: '123456' } });
    expect(code.status).toBe(403);
    expect((await t.api.get(`/v1/accounts/${account.id}/otp`)).body.assistance_request.attempts).toBe(0);
    // A revoked token stops working.
    const tokens = (await t.api.get('/v1/app-tokens')).body.data;
    const second = await t.api.post('/v1/app-tokens', { name: 'Short-lived', allowed_origins: [integratorOrigin] });
    expect((await t.api.delete(`/v1/app-tokens/${second.body.id}`)).status).toBe(204);
    expect((await widget('GET', id, { token: second.body.token })).status).toBe(401);
    // The listing shows the token made in beforeAll (publishable, so shown again) and the revoked one.
    expect(tokens.map((x: any) => x.token)).toContain(appToken);
    const listed = (await t.api.get('/v1/app-tokens')).body.data.find((x: any) => x.id === second.body.id);
    expect(listed).toMatchObject({
      name: 'Short-lived',
      allowed_origins: [integratorOrigin],
      revoked_at: expect.any(String),
    });
    expect(
      (await t.api.post('/v1/app-tokens', { name: 'x', allowed_origins: ['https://a.example/path'] })).status,
    ).toBe(400);
    await t.api.post(`/v1/sessions/${(await t.api.get(`/v1/accounts/${account.id}/status`)).body.session.id}/cancel`);
  });
});

describe('a live call that outlasts the wait', () => {
  it('answers PENDING, goes on in the background, and the results arrive by id', async () => {
    const slow = await startTestServer({ env: { OTPILOT_DATA_WAIT_SECONDS: '1' }, sandboxBank: { slowMs: 700 } });
    try {
      const account = await createSandboxAccount(slow.api, 'slow');
      const call = await slow.api.get(`/v1/accounts/${account.id}/bank-accounts?refresh=true`);
      expect(call.body).toMatchObject({ status: 'PENDING', payload: null });
      await expect
        .poll(async () => (await slow.api.get(`/v1/results/${call.body.results_id}`)).body.status, { timeout: 20_000 })
        .toBe('OK');
      const results = await slow.api.get(`/v1/results/${call.body.results_id}`);
      expect(results.body.payload.accounts.length).toBeGreaterThan(0);
      const events = await slow.server.store.db
        .selectFrom('events')
        .select(['type', 'data'])
        .where('account_id', '=', account.id)
        .where('type', '=', 'results_ready')
        .execute();
      expect(events.map((e) => JSON.parse(e.data).id)).toEqual([call.body.results_id]);
    } finally {
      await slow.close();
    }
  });
});
