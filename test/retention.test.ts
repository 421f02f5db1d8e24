import { rmSync } from 'node:fs';
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import type { Connector } from '../src/connectors/sdk.js';
import { newId } from '../src/core/ids.js';
import { startServer } from '../src/server.js';
import { createSandboxAccount, eventually, scrape } from './helpers/flows.js';
import { type Receiver, startReceiver } from './helpers/receiver.js';
import { startTestServer, TEST_ENV, type TestServer, tempDir } from './helpers/server.js';
import { dropStore, storeEnv } from './helpers/store.js';

const DAY = 86_400_000;
let offset = 0;
let t: TestServer;
let ok: Receiver;
let failing: Receiver;

beforeAll(async () => {
  // The server's clock runs `offset` ahead of the real one: the test moves it a month at a time.
  t = await startTestServer({
    clock: () => Date.now() + offset,
    env: { OTPILOT_DATA_WAIT_SECONDS: '0', OTPILOT_RETENTION_INTERVAL_SECONDS: '604800' },
  });
  ok = await startReceiver();
  failing = await startReceiver();
  failing.respond = () => 500;
});

afterAll(async () => {
  await ok?.close();
  await failing?.close();
  await t?.close();
});

async function openStream(lastEventId: string) {
  const controller = new AbortController();
  const response = await fetch(`${t.url}/v1/events`, {
    headers: { authorization: `Api-Key ${t.key}`, 'last-event-id': lastEventId },
    signal: controller.signal,
  });
  const body = response.headers.get('content-type')?.includes('json') ? await response.json() : null;
  controller.abort();
  return { status: response.status, body };
}

describe('retention', () => {
  it('prunes old events, finished deliveries with their attempts and long-expired results, keeping what is still owed', async () => {
    const { db } = t.server.store;
    const good = await t.api.post('/v1/webhooks', { url: ok.url, events: ['scrape_succeeded'] });
    const bad = await t.api.post('/v1/webhooks', { url: failing.url, events: ['scrape_succeeded'] });
    expect([good.status, bad.status]).toEqual([201, 201]);
    const account = await createSandboxAccount(t.api, 'alice');
    await scrape(t.api, account.id);
    await ok.waitFor(1);
    await failing.waitFor(1);
    const event = ok.received[0]!.json as { id: string };
    // Answered from the stored data: a results row of its own, expiring in 30 days.
    const answered = await t.api.get(`/v1/accounts/${account.id}/balances`);
    expect(answered.status).toBe(200);
    const resultsId = answered.body.results_id as string;
    expect((await t.api.get(`/v1/results/${resultsId}`)).status).toBe(200);
    // The stream resumes from the event while it is kept.
    expect((await openStream(event.id)).status).toBe(200);

    offset = 31 * DAY;
    const first = await t.server.pruner.pruneOnce();
    expect(first.deliveries).toBeGreaterThanOrEqual(1);
    expect(first.delivery_attempts).toBeGreaterThanOrEqual(1);
    const byEndpoint = async (id: string) =>
      db.selectFrom('deliveries').select(['id', 'status']).where('endpoint_id', '=', id).execute();
    expect(await byEndpoint(good.body.id)).toEqual([]);
    expect((await byEndpoint(bad.body.id)).map((d) => d.status)).toEqual(['failed']);
    // The event is still owed to the failing endpoint: kept, and a stream still resumes from it.
    expect(await db.selectFrom('events').select('id').where('id', '=', event.id).executeTakeFirst()).toBeDefined();
    expect((await openStream(event.id)).status).toBe(200);
    // Results past their 30 days answer GONE until they are pruned.
    expect((await t.api.get(`/v1/results/${resultsId}`)).status).toBe(410);

    // Once the delivery ends (the endpoint takes it, or, having failed for a month, is disabled and
    // the delivery given up), the event goes at the next pass.
    failing.respond = () => 200;
    // Its next attempt may be hours away (or the endpoint disabled, having failed for a month of
    // server time): enable it and retry by hand, as an operator would.
    await t.api.patch(`/v1/webhooks/${bad.body.id}`, { enabled: true });
    const owed = (await byEndpoint(bad.body.id))[0]!;
    await t.api.post(`/v1/webhooks/${bad.body.id}/deliveries/${owed.id}/retry`);
    await eventually(
      () => byEndpoint(bad.body.id),
      (rows) => rows[0]?.status === 'succeeded' || rows[0]?.status === 'dead',
      20_000,
    );
    const second = await t.server.pruner.pruneOnce();
    expect(second.events).toBeGreaterThanOrEqual(1);
    expect(await db.selectFrom('events').select('id').where('id', '=', event.id).executeTakeFirst()).toBeUndefined();
    // The delivery finished just now (server time): kept for its own 30 days.
    expect(await byEndpoint(bad.body.id)).toHaveLength(1);

    const gone = await openStream(event.id);
    expect(gone.status).toBe(410);
    expect(gone.body.error).toMatchObject({ code: 'GONE', details: [{ path: '/headers/last-event-id' }] });
    expect(gone.body.error.message).toContain('retention');
    // An id that was never an event is still a 400.
    const unknown = await openStream(newId('evt', Date.now() + offset));
    expect(unknown.status).toBe(400);

    offset = 61 * DAY;
    const third = await t.server.pruner.pruneOnce();
    expect(third.results).toBeGreaterThanOrEqual(1);
    expect((await t.api.get(`/v1/results/${resultsId}`)).status).toBe(404);
    // A login still works after all that.
    expect(await scrape(t.api, account.id)).toMatch(/^ses_/);
  });
});

describe('shutdown', () => {
  it('bounds each step and logs the one that overran', async () => {
    const dataDir = tempDir();
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk, _encoding, done) {
        lines.push(String(chunk));
        done();
      },
    });
    const loaded = loadConfig({
      ...TEST_ENV,
      OTPILOT_DATA_DIR: dataDir,
      ...(await storeEnv(dataDir)),
      OTPILOT_SHUTDOWN_STEP_MS: '500',
    });
    if (!loaded.ok) throw new Error(loaded.errors.join('; '));
    let entered!: () => void;
    const loginStarted = new Promise<void>((resolve) => {
      entered = resolve;
    });
    // A bank that never answers and ignores every signal. The watchdog stops waiting for a stuck call
    // at once, but closing the bank session still gets its own (longer) limit: the engine step overruns.
    const never = () => new Promise<never>(() => {});
    const stuck: Connector = {
      id: 'stuck',
      name: 'Stuck bank',
      version: '1.0.0',
      credential_fields: [],
      login: async () => ({
        bankAccounts: () => {
          entered();
          return never();
        },
        balances: never,
        identity: never,
        movements: never,
        close: never,
      }),
    };
    const server = await startServer({
      config: loaded.config,
      log: pino({ level: 'info' }, sink),
      printBootstrap: () => {},
      connectors: (builtin) => [...builtin, stuck],
    });
    const key = server.bootstrap!.apiKey;
    const headers = { authorization: `Api-Key ${key}`, 'content-type': 'application/json' };
    const created = await fetch(`${server.url}/v1/accounts`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ bank_id: 'stuck', name: 'Stuck', credentials: {} }),
    });
    expect(created.status).toBe(201);
    const { id } = (await created.json()) as { id: string };
    expect((await fetch(`${server.url}/v1/accounts/${id}/scrape`, { method: 'POST', headers })).status).toBe(202);
    await loginStarted;
    await server.close();
    const log = lines.join('');
    expect(log).toMatch(/"step":"engine"[^\n]*shutdown step still running at its bound/);
    expect(log).toContain('otpilot stopped');
    rmSync(dataDir, { recursive: true, force: true });
    await dropStore(dataDir);
  });
});
