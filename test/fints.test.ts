import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FintsBankServer, startFintsBankServer } from '../src/fints-bank/index.js';
import { FINTS_PIN } from '../src/fints-bank/users.js';
import type { Api } from './helpers/api.js';
import { pendingRequest, scrape, sessionEnd } from './helpers/flows.js';
import { dashboardToken, startTestServer, type TestServer } from './helpers/server.js';

let t: TestServer;
let bank: FintsBankServer;
/** The FinTS bank's clock runs this far ahead of the real one (tests move it to end TAN exemptions). */
let bankOffsetMs = 0;

beforeAll(async () => {
  bank = await startFintsBankServer({ port: 0, host: '127.0.0.1', bank: { now: () => Date.now() + bankOffsetMs } });
  t = await startTestServer({ env: { OTPILOT_FINTS_PRODUCT_ID: 'OTPILOTTEST' } });
  // Two servers starting on a busy machine: more than the default hook time.
}, 60_000);
afterAll(async () => {
  await t?.close();
  await bank?.close();
});

let counter = 0;

/** A `fints` account for a test-bank user `behaviour+n` (its own bank user per test). */
async function createFintsAccount(
  api: Api,
  behaviour: string,
  options: { pin?: string; config?: Record<string, unknown>; endpoint?: string } = {},
): Promise<{ id: string; user: string }> {
  const user = `${behaviour}+${process.pid}x${++counter}`;
  const reply = await api.post('/v1/accounts', {
    bank_id: 'fints',
    name: `FinTS ${user}`,
    credentials: {
      blz: '12345678',
      server_url: options.endpoint ?? bank.endpoint,
      user_id: user,
      pin: options.pin ?? FINTS_PIN,
    },
    config: options.config ?? {},
  });
  expect(reply.status, JSON.stringify(reply.body)).toBe(201);
  return { id: reply.body.id, user };
}

/** A new account of `behaviour`, a scrape, and the assistance request it opens. */
async function startFintsLogin(behaviour: string) {
  const account = await createFintsAccount(t.api, behaviour);
  const sessionId = await scrape(t.api, account.id);
  const request = await pendingRequest(t.api, account.id);
  return { account, sessionId, request };
}

/** The newest smsTAN on the test-bank user's phone page. */
async function latestTan(user: string): Promise<string> {
  const res = await fetch(`${bank.url}phone/${encodeURIComponent(user)}`);
  expect(res.status).toBe(200);
  const body = (await res.json()) as { messages: Array<{ code: string | null }> };
  const code = body.messages[0]?.code;
  if (typeof code !== 'string') throw new Error(`no TAN on ${user}'s phone`);
  return code;
}

async function movementsOf(accountId: string): Promise<any[]> {
  const reply = await t.api.get(`/v1/accounts/${accountId}/movements?limit=100`);
  expect(reply.status).toBe(200);
  expect(reply.body.next_cursor).toBeNull();
  return reply.body.data;
}

function stageNames(session: any): string[] {
  return session.stages.map((s: { name: string }) => s.name);
}

describe('the FinTS connector against the local FinTS bank', () => {
  it('lists the fints bank with its credential fields', async () => {
    const banks = await t.api.get('/v1/banks');
    const fints = banks.body.data.find((b: { id: string }) => b.id === 'fints');
    expect(fints.credential_fields.map((f: { name: string }) => f.name)).toEqual([
      'blz',
      'server_url',
      'user_id',
      'customer_id',
      'pin',
      'tan_method',
      'tan_medium',
    ]);
  });

  it('refuses malformed credentials at account creation (400 VALIDATION_FAILED, the field at fault)', async () => {
    const { api } = t;
    const base = { blz: '12345678', server_url: bank.endpoint, user_id: 'notan', pin: FINTS_PIN };
    const cases: Array<[Record<string, string>, string, RegExp]> = [
      [{ server_url: 'ftp://bank.example/fints' }, '/credentials/server_url', /FinTS server URL/],
      [{ server_url: 'not a url' }, '/credentials/server_url', /FinTS server URL/],
      [{ blz: '1234567' }, '/credentials/blz', /8-digit/],
      [{ blz: 'DEUTDEFF' }, '/credentials/blz', /8-digit/],
      [{ pin: 'pin€with-euro' }, '/credentials/pin', /FinTS can carry/],
      [{ pin: 'line\nbreak' }, '/credentials/pin', /FinTS can carry/],
      [{ tan_method: '999' }, '/credentials/tan_method', /900 to 997/],
    ];
    for (const [change, path, message] of cases) {
      const reply = await api.post('/v1/accounts', {
        bank_id: 'fints',
        name: 'FinTS bad input',
        credentials: { ...base, ...change },
      });
      expect(reply.status, JSON.stringify(change)).toBe(400);
      expect(reply.body.error.code).toBe('VALIDATION_FAILED');
      expect(reply.body.error.details).toEqual([{ path, message: expect.stringMatching(message) }]);
      if (change.pin) expect(JSON.stringify(reply.body)).not.toContain(change.pin);
    }
  });

  it('asks for the smsTAN on the first login, takes it over the API, and needs none on the next (stored system id)', async () => {
    const { api } = t;
    const { account, sessionId: first, request } = await startFintsLogin('newsys');
    expect(request).toMatchObject({
      type: 'otp',
      state: 'pending',
      max_attempts: 2,
      descriptor: {
        length: null,
        type: 'numeric',
        purpose: 'login',
        channel: 'sms',
        prompt: 'Bitte geben Sie die TAN ein, die wir per SMS an Ihr Mobiltelefon gesendet haben.',
      },
    });
    const tan = await latestTan(account.user);
    const submitted = await api.post(`/v1/accounts/${account.id}/otp?wait=true`, { code: tan, request_id: request.id });
    expect(submitted.body).toMatchObject({ submitted: true, outcome: 'accepted' });
    const session = await sessionEnd(api, first, 30_000);
    expect(session).toMatchObject({ state: 'succeeded', movements_new: 7 });
    expect(stageNames(session)).toEqual(expect.arrayContaining(['login', 'code', 'logged_in', 'movements']));

    const ledgers = (await api.get(`/v1/accounts/${account.id}/insights/balances`)).body.data;
    expect(ledgers).toHaveLength(2);
    expect(ledgers.map((l: any) => l.name).sort()).toEqual(['Girokonto', 'Tagesgeld']);
    for (const l of ledgers) {
      expect(l.iban).toMatch(/^DE\d{2}12345678\d{10}$/);
      expect(l.balance_current).toMatch(/^-?\d+\.\d{2}$/);
    }
    const movements = await movementsOf(account.id);
    expect(movements).toHaveLength(7);
    expect(movements.map((m) => m.name)).toEqual(expect.arrayContaining(['Arbeitgeber GmbH', 'Zinsen']));

    // The scheduled login reuses the registered system id: no TAN, no new movements.
    const second = await sessionEnd(api, await scrape(api, account.id), 30_000);
    expect(second).toMatchObject({ state: 'succeeded', movements_new: 0 });
    expect(stageNames(second)).not.toContain('awaiting_assistance');
    expect(JSON.stringify(second)).not.toContain(FINTS_PIN);
  });

  it('synchronizes afresh when the bank has dropped the stored system id', async () => {
    const { api } = t;
    const { account, sessionId: first } = await startFintsLogin('newsys');
    await api.post(`/v1/accounts/${account.id}/otp?wait=true`, { code: await latestTan(account.user) });
    expect((await sessionEnd(api, first, 30_000)).state).toBe('succeeded');
    const stored = [...bank.state.systemIds];
    // The bank forgets every system id it handed out: the stored one now fails the dialog init (9010).
    bank.state.systemIds.clear();
    const second = await scrape(api, account.id);
    const request = await pendingRequest(api, account.id);
    expect(request.descriptor.channel).toBe('sms');
    await api.post(`/v1/accounts/${account.id}/otp?wait=true`, { code: await latestTan(account.user) });
    expect(await sessionEnd(api, second, 30_000)).toMatchObject({ state: 'succeeded', movements_new: 0 });
    for (const id of stored) bank.state.systemIds.add(id);
    // The new system id is stored: the next login needs no TAN.
    const third = await sessionEnd(api, await scrape(api, account.id), 30_000);
    expect(third.state).toBe('succeeded');
    expect(stageNames(third)).not.toContain('awaiting_assistance');
  });

  it('counts a wrong TAN as rejected with the bank words, then accepts the right one', async () => {
    const { api } = t;
    const { account, sessionId, request } = await startFintsLogin('tan');
    const right = await latestTan(account.user);
    const wrong = right === '000000' ? '111111' : '000000';
    const refused = await api.post(`/v1/accounts/${account.id}/otp?wait=true`, { code: wrong, request_id: request.id });
    expect(refused.body).toMatchObject({ outcome: 'rejected' });
    expect(refused.body.assistance_request).toMatchObject({ state: 'pending', attempts: 1 });
    expect(JSON.stringify(refused.body)).not.toContain(right);
    const accepted = await api.post(`/v1/accounts/${account.id}/otp?wait=true`, {
      code: right,
      request_id: request.id,
    });
    expect(accepted.body).toMatchObject({ outcome: 'accepted' });
    expect((await sessionEnd(api, sessionId, 30_000)).state).toBe('succeeded');

    // Within the bank's exemption window the next login needs no TAN; after it, the bank asks again.
    expect((await sessionEnd(api, await scrape(api, account.id), 30_000)).state).toBe('succeeded');
    bankOffsetMs += 6 * 60_000;
    const third = await scrape(api, account.id);
    const again = await pendingRequest(api, account.id);
    expect(again.id).not.toBe(request.id);
    const tan = await latestTan(account.user);
    expect((await api.post(`/v1/accounts/${account.id}/otp?wait=true`, { code: tan })).body.outcome).toBe('accepted');
    expect((await sessionEnd(api, third, 30_000)).state).toBe('succeeded');
  });

  it("stops after two wrong TANs and never spends the bank's third: the access stays open", async () => {
    const { api } = t;
    const { account, sessionId, request } = await startFintsLogin('tan');
    const right = await latestTan(account.user);
    const wrong = right === '000000' ? '111111' : '000000';
    for (let i = 0; i < 2; i++)
      expect((await api.post(`/v1/accounts/${account.id}/otp?wait=true`, { code: wrong })).body.outcome).toBe(
        'rejected',
      );
    expect(await sessionEnd(api, sessionId, 30_000)).toMatchObject({
      state: 'failed',
      failure_category: 'attempts_exhausted',
    });
    expect(bank.state.user(account.user)?.locked).toBe(false);
    expect(request.max_attempts).toBe(2);
  });

  it('ends the login code_rejected when the bank says the TAN expired (9951)', async () => {
    const { api } = t;
    const { account, sessionId } = await startFintsLogin('newsys');
    const tan = await latestTan(account.user);
    bankOffsetMs += 6 * 60_000;
    await api.post(`/v1/accounts/${account.id}/otp?wait=true`, { code: tan });
    const session = await sessionEnd(api, sessionId, 30_000);
    expect(session).toMatchObject({ state: 'failed', failure_category: 'code_rejected' });
    expect(session.failure_message).toContain('9951');
    expect(session.failure_message).not.toContain(tan);
  });

  it('reports an answer it does not expect as connector_broken, with the code and text', async () => {
    const { api } = t;
    const reply = await api.post('/v1/accounts', {
      bank_id: 'fints',
      name: 'FinTS unknown bank code',
      credentials: { blz: '87654321', server_url: bank.endpoint, user_id: 'notan', pin: FINTS_PIN },
    });
    const session = await sessionEnd(api, await scrape(api, reply.body.id), 30_000);
    expect(session).toMatchObject({ state: 'failed', failure_category: 'connector_broken' });
    expect(session.failure_message).toContain('9210 Bankleitzahl unbekannt.');
    expect(session.failure_message).not.toContain(FINTS_PIN);
  });

  it('takes the TAN from a signed-in dashboard user (the dashboard API)', async () => {
    const { api } = t;
    const token = await dashboardToken(t);
    const { account, sessionId, request } = await startFintsLogin('tan');
    const submitted = await fetch(`${t.url}/accounts/${account.id}/otp?wait=true`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ code: await latestTan(account.user), request_id: request.id }),
    });
    expect(submitted.status).toBe(200);
    expect(await submitted.json()).toMatchObject({ outcome: 'accepted' });
    expect((await sessionEnd(api, sessionId, 30_000)).state).toBe('succeeded');
    const list = (await api.get(`/v1/assistance-requests?account_id=${account.id}`)).body.data;
    expect(list.find((r: { id: string }) => r.id === request.id)).toMatchObject({
      state: 'fulfilled',
      resolution: { via: 'dashboard' },
    });
  });

  it('waits for a decoupled approval given on the phone', async () => {
    const { api } = t;
    const { account, sessionId, request } = await startFintsLogin('decoupled');
    expect(request).toMatchObject({
      type: 'approval',
      descriptor: { purpose: 'login', prompt: 'Bitte bestätigen Sie die Anmeldung in Ihrer pushTAN-App.' },
    });
    const approved = await fetch(`${bank.url}phone/${encodeURIComponent(account.user)}/approve`, { method: 'POST' });
    expect(approved.status).toBe(200);
    const session = await sessionEnd(api, sessionId, 30_000);
    expect(session).toMatchObject({ state: 'succeeded', movements_new: 7 });
  });

  it('ends the login code_rejected when the phone refuses the approval', async () => {
    const { api } = t;
    const { account, sessionId } = await startFintsLogin('decoupled');
    const refused = await fetch(`${bank.url}phone/${encodeURIComponent(account.user)}/refuse`, { method: 'POST' });
    expect(refused.status).toBe(200);
    expect(await sessionEnd(api, sessionId, 30_000)).toMatchObject({
      state: 'failed',
      failure_category: 'code_rejected',
    });
  });

  it('reads statements across touchdown pages and de-duplicates them on re-fetch', async () => {
    const { api } = t;
    const { account, sessionId: first, request } = await startFintsLogin('pages');
    await api.post(`/v1/accounts/${account.id}/otp?wait=true`, {
      code: await latestTan(account.user),
      request_id: request.id,
    });
    expect(await sessionEnd(api, first, 30_000)).toMatchObject({ state: 'succeeded', movements_new: 24 });
    const movements = await movementsOf(account.id);
    expect(movements).toHaveLength(24);
    expect(new Set(movements.map((m) => m.bank_movement_id ?? m.id)).size).toBe(24);
    expect(await sessionEnd(api, await scrape(api, account.id), 30_000)).toMatchObject({
      state: 'succeeded',
      movements_new: 0,
    });
    expect(await movementsOf(account.id)).toHaveLength(24);
  });

  it('reads camt.052 statements (HKCAZ) when the account offers them, across pages, de-duplicated', async () => {
    const { api } = t;
    const camtOrders = bank.state.orders.get('HKCAZ') ?? 0;
    const { account, sessionId, request } = await startFintsLogin('camt');
    await api.post(`/v1/accounts/${account.id}/otp?wait=true`, {
      code: await latestTan(account.user),
      request_id: request.id,
    });
    expect(await sessionEnd(api, sessionId, 30_000)).toMatchObject({ state: 'succeeded', movements_new: 24 });
    const movements = await movementsOf(account.id);
    expect(movements).toHaveLength(24);
    const rent = movements.find((m) => m.name === 'Vermieter');
    expect(rent).toMatchObject({ amount: '-950.00', currency: 'EUR', reference: 'Miete 4' });
    // 24 movements of two accounts, 5 a page: 5 pages on the giro account, 1 on savings.
    expect((bank.state.orders.get('HKCAZ') ?? 0) - camtOrders).toBe(6);
    expect(await sessionEnd(api, await scrape(api, account.id), 30_000)).toMatchObject({
      state: 'succeeded',
      movements_new: 0,
    });
  });

  it('blocks the account at once on a wrong PIN', async () => {
    const { api } = t;
    const account = await createFintsAccount(api, 'notan', { pin: 'wrong-pin' });
    const session = await sessionEnd(api, await scrape(api, account.id), 30_000);
    expect(session).toMatchObject({ state: 'failed', failure_category: 'invalid_credentials' });
    expect(session.failure_message).toContain('9942');
    expect(JSON.stringify(session)).not.toContain('wrong-pin');
    expect((await api.get(`/v1/accounts/${account.id}`)).body).toMatchObject({
      status: 'blocked',
      blocked_reason: 'invalid_credentials',
    });
  });

  it('blocks a locked access at once', async () => {
    const { api } = t;
    const account = await createFintsAccount(api, 'locked');
    const session = await sessionEnd(api, await scrape(api, account.id), 30_000);
    expect(session).toMatchObject({ state: 'failed', failure_category: 'account_locked' });
    expect((await api.get(`/v1/accounts/${account.id}`)).body.blocked_reason).toBe('account_locked');
  });

  it('logs in to the FinTS bank mounted in-process at /fints-bank (the tour set-up)', async () => {
    const { api } = t;
    const account = await createFintsAccount(api, 'notan', { endpoint: `${t.url}/fints-bank/fints` });
    const session = await sessionEnd(api, await scrape(api, account.id), 30_000);
    expect(session).toMatchObject({ state: 'succeeded', movements_new: 7 });
    const phone = await api.get(`/fints-bank/phone/${encodeURIComponent(account.user)}`, null);
    expect(phone.body).toEqual({ user: account.user, messages: [] });
  });

  it('fails connector_broken without contacting the bank when OTPILOT_FINTS_PRODUCT_ID is not set', async () => {
    const bare = await startTestServer();
    // A first contact always asks the bank for a system id: none handed out means nothing reached it.
    const handedOut = bank.state.systemIds.size;
    try {
      const reply = await bare.api.post('/v1/accounts', {
        bank_id: 'fints',
        name: 'FinTS without a product id',
        credentials: { blz: '12345678', server_url: bank.endpoint, user_id: 'notan+noproduct', pin: FINTS_PIN },
      });
      const session = await sessionEnd(bare.api, await scrape(bare.api, reply.body.id), 30_000);
      expect(session).toMatchObject({ state: 'failed', failure_category: 'connector_broken' });
      expect(session.failure_message).toContain('OTPILOT_FINTS_PRODUCT_ID is not set');
      expect(bank.state.systemIds.size).toBe(handedOut);
      expect((await bare.api.get(`/v1/accounts/${reply.body.id}`)).body.blocked_reason).toBeNull();
    } finally {
      await bare.close();
    }
  }, 60_000);

  it('reports a bank that answers 503 as unavailable, without blocking the account', async () => {
    const { api } = t;
    const account = await createFintsAccount(api, 'down');
    const session = await sessionEnd(api, await scrape(api, account.id), 30_000);
    expect(session).toMatchObject({ state: 'failed', failure_category: 'bank_unavailable' });
    expect((await api.get(`/v1/accounts/${account.id}`)).body.blocked_reason).toBeNull();
  });
});
