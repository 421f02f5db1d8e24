import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defineConnector, isEngineStop } from '../src/connectors/sdk.js';
import {
  createSandboxAccount,
  eventually,
  latestCode,
  pendingRequest,
  sessionEnd,
  statusUntil,
} from './helpers/flows.js';
import { startTestServer, type TestServer } from './helpers/server.js';

/*
 * `session_type: persistent`: the worker keeps the bank session open between scheduled scrapes (calling
 * the connector's keepAlive), so later scrapes log in to nothing and ask for no code, until the bank
 * ends the session. The service and the sandbox bank share a clock the test moves, so schedules come
 * due at once; keepAlive runs every second of real time.
 */

const MINUTE = 60_000;
const clock = { offset: 0, now: () => Date.now() + clock.offset };
let t: TestServer;

beforeAll(async () => {
  t = await startTestServer({ clock: clock.now, sandboxBank: { now: clock.now } });
});
afterAll(async () => {
  await t?.close();
});

/** Moves time past the account's next run and resolves with the scheduled session that run queues. */
async function nextScheduled(accountId: string, seen: Set<string>): Promise<string> {
  clock.offset += MINUTE + 7_000; // an `every 1m` schedule plus its jitter (at most 10 %)
  const list = await eventually(
    () => t.api.get(`/v1/accounts/${accountId}/sessions`),
    (r) => r.body.data.some((s: { id: string }) => !seen.has(s.id)),
    20_000,
  );
  const session = list.body.data.find((s: { id: string }) => !seen.has(s.id));
  expect(session.trigger).toBe('schedule');
  seen.add(session.id);
  return session.id;
}

async function codeRequests(accountId: string): Promise<number> {
  return (await t.api.get(`/v1/assistance-requests?account_id=${accountId}`)).body.data.length;
}

describe('persistent sessions', () => {
  it('log in once for three scheduled scrapes (one code), and again after the bank ends the session', async () => {
    const account = await createSandboxAccount(t.api, 'otp', {
      session_type: 'persistent',
      schedule: 'every 1m',
      keep_alive_seconds: 1,
    });
    expect((await t.api.get(`/v1/accounts/${account.id}/config`)).body.keep_alive_seconds).toBe(1);
    const bank = t.server.sandboxBank!;
    const loginsBefore = bank.stats().logins;
    const seen = new Set<string>();

    // First scheduled scrape: a login with a code.
    const first = await nextScheduled(account.id, seen);
    const request = await pendingRequest(t.api, account.id);
    const code = await latestCode(t.api, account.username);
    expect(
      (await t.api.post(`/v1/accounts/${account.id}/otp?wait=true`, { code, request_id: request.id })).status,
    ).toBe(200);
    expect(await sessionEnd(t.api, first)).toMatchObject({ state: 'succeeded' });
    const held = await statusUntil(t.api, account.id, (s) => s.live_session_since !== null);
    const since = held.live_session_since;

    // Two more: the kept session is reused, no login, no code.
    for (let i = 0; i < 2; i++) {
      const reused = await sessionEnd(t.api, await nextScheduled(account.id, seen));
      expect(reused.state).toBe('succeeded');
      expect(reused.stages.map((s: { name: string }) => s.name)).toContain('reuse_session');
      expect(reused.stages.map((s: { name: string }) => s.name)).not.toContain('login');
    }
    expect(bank.stats().logins - loginsBefore).toBe(1);
    expect(await codeRequests(account.id)).toBe(1);
    expect((await t.api.get(`/v1/accounts/${account.id}`)).body.live_session_since).toBe(since);
    const movements = await t.api.get(`/v1/accounts/${account.id}/movements?limit=500`);
    expect(movements.body.data.length).toBeGreaterThan(0);

    // The bank logs the user out: keepAlive notices, the session is released.
    const ended = await t.api.delete(`/sandbox-bank/sessions/${encodeURIComponent(account.username)}`, undefined, null);
    expect(ended.body).toEqual({ ended: 1 });
    await statusUntil(t.api, account.id, (s) => s.live_session_since === null);

    // The next scheduled scrape logs in again, with a new code.
    const again = await nextScheduled(account.id, seen);
    const next = await pendingRequest(t.api, account.id);
    expect(next.session_id).toBe(again);
    const newCode = await latestCode(t.api, account.username);
    expect(
      (await t.api.post(`/v1/accounts/${account.id}/otp?wait=true`, { code: newCode, request_id: next.id })).status,
    ).toBe(200);
    expect(await sessionEnd(t.api, again)).toMatchObject({ state: 'succeeded' });
    expect(bank.stats().logins - loginsBefore).toBe(2);
    expect(await codeRequests(account.id)).toBe(2);
    await statusUntil(t.api, account.id, (s) => s.live_session_since !== null);
    expect(t.server.engine.keeper.size()).toBe(1);
  });

  it('one-shot accounts keep nothing; switching to one-shot ends a kept session', async () => {
    const account = await createSandboxAccount(t.api, 'alice', { session_type: 'persistent', keep_alive_seconds: 1 });
    const first = (await t.api.post(`/v1/accounts/${account.id}/scrape`)).body.session_id;
    expect(await sessionEnd(t.api, first)).toMatchObject({ state: 'succeeded' });
    await statusUntil(t.api, account.id, (s) => s.live_session_since !== null);
    expect((await t.api.put(`/v1/accounts/${account.id}/config`, { session_type: 'one-shot' })).status).toBe(200);
    await statusUntil(t.api, account.id, (s) => s.live_session_since === null);
    const second = (await t.api.post(`/v1/accounts/${account.id}/scrape`)).body.session_id;
    const done = await sessionEnd(t.api, second);
    expect(done.stages.map((s: { name: string }) => s.name)).toContain('login');
    expect((await t.api.get(`/v1/accounts/${account.id}`)).body.live_session_since).toBeNull();
  });
});

describe('kept sessions in one worker: cap, keepAlive failures, shutdown, engine stops', () => {
  /** A bank whose sessions count their logins, keepAlives and closes; keepAlive answers what `alive` says. */
  const bank = {
    logins: 0,
    keepAlives: 0,
    closes: 0,
    alive: true as boolean | 'throw',
    stopSeen: null as boolean | null,
  };
  const entered: Array<() => void> = [];
  const connector = defineConnector({
    id: 'keepable',
    name: 'Keepable Bank',
    version: '1.0.0',
    credential_fields: [{ name: 'mode', label: 'Mode', type: 'text', required: false }],
    async login(ctx) {
      if (ctx.credentials.mode === 'hang') {
        // Waits for the engine to stop the login, and notes whether it can tell that from a bank error.
        await new Promise<void>((resolve) => {
          ctx.signal.addEventListener('abort', () => resolve(), { once: true });
          for (const wake of entered.splice(0)) wake();
        });
        bank.stopSeen = isEngineStop(ctx.signal.reason);
        throw ctx.signal.reason;
      }
      bank.logins++;
      return {
        bankAccounts: async () => [
          { id: 'l1', name: 'Ledger', iban: null, number: null, currency: 'EUR', type: 'current' },
        ],
        balances: async () => [],
        identity: async () => ({ name: 'Keep', email: null, phone: null }),
        movements: async () => [],
        async keepAlive() {
          bank.keepAlives++;
          if (bank.alive === 'throw') throw new Error('the bank hung up');
          return bank.alive;
        },
        async close() {
          bank.closes++;
        },
      };
    },
  });
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer({
      connectors: (builtin) => [...builtin, connector],
      env: { OTPILOT_PERSISTENT_SESSIONS: '1' },
    });
  });
  afterAll(async () => {
    await s?.close();
  });

  async function account(mode = ''): Promise<string> {
    const created = await s.api.post('/v1/accounts', {
      bank_id: 'keepable',
      name: `Keep ${mode || 'ok'} ${Math.random()}`,
      credentials: { mode },
      config: { session_type: 'persistent', keep_alive_seconds: 1 },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    return created.body.id;
  }
  const scrapeOk = async (id: string) =>
    expect(await sessionEnd(s.api, (await s.api.post(`/v1/accounts/${id}/scrape`)).body.session_id)).toMatchObject({
      state: 'succeeded',
    });

  it('keeps at most OTPILOT_PERSISTENT_SESSIONS, ends a session whose keepAlive throws, and closes the rest at shutdown', async () => {
    const a = await account();
    await scrapeOk(a);
    await statusUntil(s.api, a, (st) => st.live_session_since !== null);
    // The cap (1) is reached: the second account's session is closed after its scrape.
    const b = await account();
    await scrapeOk(b);
    expect(bank.closes).toBe(1);
    expect((await s.api.get(`/v1/accounts/${b}`)).body.live_session_since).toBeNull();

    bank.alive = 'throw';
    await statusUntil(s.api, a, (st) => st.live_session_since === null);
    expect(bank.closes).toBe(2);
    bank.alive = true;
    await scrapeOk(a);
    expect(bank.logins).toBe(3);
    await statusUntil(s.api, a, (st) => st.live_session_since !== null);
    await scrapeOk(a);
    expect(bank.logins).toBe(3);

    // A cancelled login sees the engine's stop as such (isEngineStop on its signal's reason).
    const hanging = await account('hang');
    const waiting = new Promise<void>((resolve) => entered.push(resolve));
    const sessionId = (await s.api.post(`/v1/accounts/${hanging}/scrape`)).body.session_id;
    await waiting;
    expect((await s.api.post(`/v1/sessions/${sessionId}/cancel`)).status).toBe(202);
    expect(await sessionEnd(s.api, sessionId)).toMatchObject({ state: 'cancelled' });
    expect(bank.stopSeen).toBe(true);

    expect(s.server.engine.keeper.size()).toBe(1);
    await s.server.close();
    expect(s.server.engine.keeper.size()).toBe(0);
    expect(bank.closes).toBe(3);
  });
});
