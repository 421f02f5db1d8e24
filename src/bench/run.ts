import { fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import Fastify from 'fastify';
import { loadConfig } from '../config.js';
import { ingestMovements } from '../movements/ingest.js';
import { type RunningServer, startServer } from '../server.js';
import { benchBrowser } from './browser.js';
import { runBurstBenchmarks } from './burst.js';
import { createAccounts, makeBenchClient } from './client.js';
import type { DriverResult, DriverTask } from './driver.js';
import { benchFints } from './fints.js';
import { runPostgresBenchmarks } from './postgres.js';
import { benchReconcileBatch, benchReconcileLive } from './reconcile.js';
import { percentile, round } from './stats.js';
import { timingConnectors } from './timing.js';
import { benchWaiting } from './waiting.js';

/** Sizes, overridable from the environment for a quick run (`BENCH_SCALE=0.1`). */
const SCALE = Number(process.env.BENCH_SCALE ?? '1');
const scaled = (n: number) => Math.max(1, Math.round(n * SCALE));
const HANDOFF_LOGINS = scaled(1000);
const HANDOFF_LANES = Number(process.env.BENCH_LANES ?? '20');
const THROUGHPUT_ACCOUNTS = scaled(200);
const THROUGHPUT_ROUNDS = 3;
const LOAD_SECONDS = Number(process.env.BENCH_LOAD_SECONDS ?? '5');
const INGEST_ROWS = scaled(200_000);
const WAITING_LOGINS = scaled(10_000);
const RECONCILE_PAYMENTS = scaled(100_000);
const RECONCILE_MOVEMENTS = scaled(1_000_000);
const FINTS_LOGINS = scaled(100);
const BROWSER_LOGINS = scaled(20);
/** Browser logins open at once for the memory figure (OTPILOT_BROWSER_CONCURRENCY's default). */
const BROWSER_CONCURRENT = Number(process.env.BENCH_BROWSER_N ?? '4');

const log = (message: string) => process.stderr.write(`bench: ${message}\n`);

type DriverReply = { ok: boolean; result?: DriverResult; error?: string };

function drive(task: DriverTask): Promise<DriverResult> {
  const script = new URL('./driver.js', import.meta.url);
  return new Promise((resolve, reject) => {
    const settle = (message: DriverReply) => (message.ok ? resolve(message.result!) : reject(new Error(message.error)));
    if (task.kind === 'load') {
      const child = fork(script, [], { stdio: 'inherit' });
      child.once('message', (message: DriverReply) => settle(message));
      child.once('error', reject);
      child.send(task);
      return;
    }
    const worker = new Worker(script, { workerData: task });
    worker.once('message', (message: DriverReply) => {
      void worker.terminate();
      settle(message);
    });
    worker.once('error', reject);
  });
}

/** Starts the receiver thread; resolves with its URL and the arrivals it reports. */
async function startReceiver(): Promise<{ url: string; arrivals: Map<string, number[]>; stop(): Promise<void> }> {
  const worker = new Worker(new URL('./receiver.js', import.meta.url));
  const arrivals = new Map<string, number[]>();
  const port = await new Promise<number>((resolve, reject) => {
    worker.on(
      'message',
      (message: { kind: string; port?: number; type?: string; account_id?: string; at?: number }) => {
        if (message.kind === 'ready') resolve(message.port!);
        else if (message.kind === 'event' && message.type === 'assistance_required') {
          const list = arrivals.get(message.account_id!) ?? [];
          list.push(message.at!);
          arrivals.set(message.account_id!, list);
        }
      },
    );
    worker.once('error', reject);
  });
  return {
    url: `http://127.0.0.1:${port}/hook`,
    arrivals,
    async stop() {
      worker.postMessage({ kind: 'stop' });
      await new Promise((resolve) => worker.once('exit', resolve));
    },
  };
}

async function benchLogins(
  server: RunningServer,
  key: string,
  holds: Map<string, number[]>,
  prompts: Map<string, number[]>,
) {
  // Hand-off latency: 1,000 logins over 20 accounts (20 at a time); a local endpoint receives each prompt.
  const receiver = await startReceiver();
  const endpoint = await fetch(`${server.url}/v1/webhooks`, {
    method: 'POST',
    headers: { authorization: `Api-Key ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ url: receiver.url, events: ['assistance_required'] }),
  });
  if (endpoint.status !== 201) throw new Error(`webhook endpoint: ${endpoint.status} ${await endpoint.text()}`);
  const endpointId = ((await endpoint.json()) as { id: string }).id;
  const lanes = await createAccounts(server, key, 'h', HANDOFF_LANES);
  const perLane = Math.ceil(HANDOFF_LOGINS / HANDOFF_LANES);
  log(`hand-off: ${perLane * HANDOFF_LANES} assisted logins`);
  const handoff = await drive({ kind: 'logins', url: server.url, key, accounts: lanes, perAccount: perLane });
  if (handoff.kind !== 'logins') throw new Error('unexpected result');
  const afterResponse: number[] = [];
  const afterRequest: number[] = [];
  for (const s of handoff.submissions) {
    const held = holds.get(s.username)?.[s.index];
    if (held === undefined) throw new Error(`no hold recorded for ${s.username} #${s.index}`);
    afterResponse.push(Math.max(0, held - s.answeredAt));
    afterRequest.push(held - s.sentAt);
  }
  await server.delivery.drain();
  const promptToWebhook: number[] = [];
  for (const lane of lanes) {
    const sent = prompts.get(lane.username) ?? [];
    const arrived = receiver.arrivals.get(lane.id) ?? [];
    if (arrived.length !== sent.length)
      throw new Error(`${lane.username}: ${sent.length} prompts, ${arrived.length} webhooks`);
    for (const [i, at] of arrived.entries()) promptToWebhook.push(at - sent[i]!);
  }
  await fetch(`${server.url}/v1/webhooks/${endpointId}`, {
    method: 'DELETE',
    headers: { authorization: `Api-Key ${key}` },
  });
  await receiver.stop();

  // Throughput: 200 accounts logging in at once; a first round reads 90 days of history, so it is a warm-up.
  const accounts = await createAccounts(server, key, 't', THROUGHPUT_ACCOUNTS);
  log(`throughput: warm-up round over ${accounts.length} accounts`);
  await drive({ kind: 'logins', url: server.url, key, accounts, perAccount: 1 });
  log(`throughput: ${THROUGHPUT_ROUNDS} rounds over ${accounts.length} accounts`);
  const throughput = await drive({ kind: 'logins', url: server.url, key, accounts, perAccount: THROUGHPUT_ROUNDS });
  if (throughput.kind !== 'logins') throw new Error('unexpected result');
  return {
    handoff_ms: { p50: round(percentile(afterResponse, 50)), p99: round(percentile(afterResponse, 99)) },
    handoff_from_request_ms: { p50: round(percentile(afterRequest, 50)), p99: round(percentile(afterRequest, 99)) },
    handoff_samples: afterResponse.length,
    prompt_to_webhook_ms: { p50: round(percentile(promptToWebhook, 50)), p99: round(percentile(promptToWebhook, 99)) },
    logins_per_s: round(throughput.submissions.length / throughput.seconds, 1),
    logins_concurrent_accounts: accounts.length,
  };
}

async function benchStatus(server: RunningServer, key: string, accountId: string) {
  const bare = Fastify({ logger: false });
  bare.get('/bare', async () => ({ ok: true }));
  await bare.listen({ port: 0, host: '127.0.0.1' });
  const address = bare.server.address();
  const barePort = typeof address === 'object' && address ? address.port : 0;
  try {
    log(`status: ${LOAD_SECONDS} s of GET /v1/accounts/:id/status, then ${LOAD_SECONDS} s of a bare Fastify route`);
    const status = await drive({
      kind: 'load',
      url: `${server.url}/v1/accounts/${accountId}/status`,
      headers: { authorization: `Api-Key ${key}` },
      seconds: LOAD_SECONDS,
      connections: 20,
    });
    const plain = await drive({
      kind: 'load',
      url: `http://127.0.0.1:${barePort}/bare`,
      headers: {},
      seconds: LOAD_SECONDS,
      connections: 20,
    });
    if (status.kind !== 'load' || plain.kind !== 'load') throw new Error('unexpected result');
    if (status.non2xx > 0 || status.errors > 0)
      throw new Error(`status load had ${status.non2xx} non-2xx and ${status.errors} errors`);
    return {
      status_rps: Math.round(status.rps),
      bare_rps: Math.round(plain.rps),
      status_vs_bare: round(status.rps / plain.rps, 3),
    };
  } finally {
    await bare.close();
  }
}

async function benchIngest(server: RunningServer, key: string) {
  const client = makeBenchClient(server.url, key);
  const accountId = await client.createAccount('alice+ingest', 'ingest');
  const db = server.store.db;
  const transact = server.transact;
  const org = await db.selectFrom('accounts').select('org_id').where('id', '=', accountId).executeTakeFirstOrThrow();
  const ledgers = new Map([
    ['current', 'bac_00000000000000000000000001'],
    ['savings', 'bac_00000000000000000000000002'],
  ]);
  const movements = Array.from({ length: INGEST_ROWS }, (_, i) => ({
    id: `tx${i}`,
    bank_account_id: i % 2 === 0 ? 'current' : 'savings',
    booked_at: new Date(Date.UTC(2026, 0, 1) + i * 60_000).toISOString(),
    amount: `${i % 3 === 0 ? '-' : ''}${(i % 9973) + 1}.${String(i % 100).padStart(2, '0')}`,
    currency: 'EUR',
    name: `Counterparty ${i % 500}`,
    reference: `INV-${i}`,
  }));
  const batch = 5_000;
  const run = async () => {
    let inserted = 0;
    const started = performance.now();
    for (let start = 0; start < movements.length; start += batch) {
      inserted += await transact((trx, uow) =>
        ingestMovements(trx, uow, {
          orgId: org.org_id,
          accountId,
          sessionId: null,
          bankAccountIds: ledgers,
          movements: movements.slice(start, start + batch),
          silent: false,
          now: Date.now(),
        }),
      );
    }
    return { inserted, seconds: (performance.now() - started) / 1000 };
  };
  log(`ingest: ${INGEST_ROWS} new movements, then the same again (all duplicates)`);
  const fresh = await run();
  const again = await run();
  if (fresh.inserted !== INGEST_ROWS || again.inserted !== 0)
    throw new Error(`de-duplication failed: ${fresh.inserted}, ${again.inserted}`);
  return {
    ingest_per_s: Math.round(INGEST_ROWS / fresh.seconds),
    ingest_duplicates_per_s: Math.round(INGEST_ROWS / again.seconds),
  };
}

async function benchReconcile(server: RunningServer, key: string) {
  log(
    `reconcile: ${RECONCILE_PAYMENTS} expected payments against ${RECONCILE_MOVEMENTS} movements, then new movements one by one`,
  );
  return {
    ...benchReconcileBatch(RECONCILE_PAYMENTS, RECONCILE_MOVEMENTS),
    ...(await benchReconcileLive(server, key, RECONCILE_PAYMENTS, 200)),
  };
}

/** The SQLite benchmarks: one otpilot (role `all`) in this process on a fresh embedded store. */
async function runSqliteBenchmarks(only: string): Promise<Record<string, unknown>> {
  const dataDir = mkdtempSync(join(tmpdir(), 'otpilot-bench-'));
  const loaded = loadConfig({
    OTPILOT_DATA_DIR: dataDir,
    PORT: '0',
    HOST: '127.0.0.1',
    LOG_LEVEL: 'silent',
    OTPILOT_WORKER_CONCURRENCY: String(WAITING_LOGINS + 1000),
    OTPILOT_CODE_RATE_LIMIT: '1000000',
    OTPILOT_SCHEDULER_TICK_MS: '60000',
    // The benchmark's webhook receiver listens on loopback.
    OTPILOT_ALLOW_PRIVATE_URLS: 'true',
    // The local FinTS bank takes any registration id.
    OTPILOT_FINTS_PRODUCT_ID: 'OTPILOTBENCH',
    OTPILOT_BROWSER_CONCURRENCY: String(BROWSER_CONCURRENT),
  });
  if (!loaded.ok) throw new Error(loaded.errors.join('; '));
  const holds = new Map<string, number[]>();
  const prompts = new Map<string, number[]>();
  const server = await startServer({
    config: loaded.config,
    printBootstrap: () => {},
    connectors: timingConnectors(holds, prompts),
    // The website's slow page would only measure its own delay.
    sandboxBank: { webSlowMs: 0 },
  });
  const key = server.bootstrap!.apiKey;
  const result: Record<string, unknown> = {};
  try {
    if (only === 'waiting') return await benchWaiting(server, key, WAITING_LOGINS);
    if (only === 'fints') return Object.assign(result, await benchFints(server, key, holds, FINTS_LOGINS, log));
    if (only === '' || only === 'sqlite' || only === 'browser') {
      log('browser logins');
      Object.assign(
        result,
        await benchBrowser(server.url, key, { logins: BROWSER_LOGINS, concurrent: BROWSER_CONCURRENT }),
      );
    }
    if (only !== 'reconcile' && only !== 'browser') {
      Object.assign(result, await benchLogins(server, key, holds, prompts));
      Object.assign(result, await benchFints(server, key, holds, FINTS_LOGINS, log));
      Object.assign(result, await benchStatus(server, key, server.bootstrap!.sandboxAccountId!));
      Object.assign(result, await benchIngest(server, key));
      Object.assign(result, await benchWaiting(server, key, WAITING_LOGINS));
    }
    if (only !== 'browser') Object.assign(result, await benchReconcile(server, key));
  } finally {
    await server.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
  return result;
}

/**
 * Runs the benchmarks and prints one JSON object on the last line: the SQLite figures, then with
 * `BENCH_DATABASE_URL` (or `DATABASE_URL`) set the PostgreSQL ones (`pg_*` keys, absent otherwise).
 * `BENCH_ONLY` runs a part: `sqlite`, `pg`, one PostgreSQL phase (`pg-handoff`, `pg-claims`), or
 * `reconcile` (the reconciliation figures alone, on SQLite), `waiting` (the paused logins and their
 * idle cost alone, on SQLite), `burst` (see burst.ts; both stores with a database URL), `fints` (the FinTS logins alone, on SQLite) or `browser` (browser-script
 * logins alone).
 */
export async function runBenchmarks(): Promise<void> {
  const only = process.env.BENCH_ONLY ?? '';
  const parts = ['', 'sqlite', 'pg', 'pg-handoff', 'pg-claims', 'reconcile', 'waiting', 'fints', 'browser', 'burst'];
  if (!parts.includes(only)) throw new Error(`BENCH_ONLY must be one of ${parts.filter(Boolean).join(', ')}`);
  const databaseUrl = process.env.BENCH_DATABASE_URL || process.env.DATABASE_URL || null;
  if (only === 'burst') {
    process.stdout.write(
      `${JSON.stringify({ node: process.version, burst: await runBurstBenchmarks(databaseUrl) })}\n`,
    );
    return;
  }
  const pgOnly = only.startsWith('pg');
  if (pgOnly && !databaseUrl) throw new Error(`BENCH_ONLY=${only} needs BENCH_DATABASE_URL or DATABASE_URL`);
  // `store` names the store of the unprefixed keys; the `pg_*` keys are always PostgreSQL.
  const result: Record<string, unknown> = pgOnly
    ? { node: process.version }
    : { store: 'sqlite', node: process.version };
  if (!pgOnly) Object.assign(result, await runSqliteBenchmarks(only));
  if (databaseUrl && (only === '' || pgOnly))
    Object.assign(
      result,
      await runPostgresBenchmarks(databaseUrl, {
        handoff: only !== 'pg-claims',
        claims: only !== 'pg-handoff',
      }),
    );
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

// `npm run bench` runs this file itself (`otpilot bench` imports it and calls runBenchmarks).
if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  runBenchmarks().then(
    () => process.exit(0),
    (error: unknown) => {
      process.stderr.write(
        `bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
      );
      process.exit(1);
    },
  );
}
