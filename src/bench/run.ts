import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import Fastify from 'fastify';
import { loadConfig } from '../config.js';
import { ingestMovements } from '../movements/ingest.js';
import { type RunningServer, startServer } from '../server.js';
import { benchBrowser } from './browser.js';
import { runBurstBenchmarks } from './burst.js';
import { drive } from './children.js';
import { makeBenchClient } from './client.js';
import { benchFints } from './fints.js';
import { benchLogins } from './logins.js';
import { runPostgresBenchmarks } from './postgres.js';
import { Processes } from './processes.js';
import { benchReconcileBatch, benchReconcileLive } from './reconcile.js';
import { round } from './stats.js';
import { benchStorage } from './storage.js';
import { timingConnectors } from './timing.js';
import { benchWaiting } from './waiting.js';

/** Sizes, overridable from the environment for a quick run (`BENCH_SCALE=0.1`). */
const SCALE = Number(process.env.BENCH_SCALE ?? '1');
const scaled = (n: number) => Math.max(1, Math.round(n * SCALE));
const HANDOFF_LOGINS = scaled(1000);
const HANDOFF_LANES = Number(process.env.BENCH_LANES ?? '20');
const SINGLE_LOGINS = scaled(200);
const THROUGHPUT_ACCOUNTS = scaled(200);
const THROUGHPUT_ROUNDS = 3;
const LOAD_SECONDS = Number(process.env.BENCH_LOAD_SECONDS ?? '5');
const INGEST_ROWS = scaled(200_000);
const WAITING_LOGINS = scaled(10_000);
const RECONCILE_PAYMENTS = scaled(100_000);
const RECONCILE_MOVEMENTS = scaled(1_000_000);
const FINTS_LOGINS = scaled(100);
const BROWSER_LOGINS = scaled(20);
const STORAGE_MOVEMENTS = scaled(20_000);
/** Browser logins open at once for the memory figure (OTPILOT_BROWSER_CONCURRENCY's default). */
const BROWSER_CONCURRENT = Number(process.env.BENCH_BROWSER_N ?? '4');

const log = (message: string) => process.stderr.write(`bench: ${message}\n`);

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

/** The otpilot under test on SQLite, in this process, and what the parts need of it. */
interface SqliteContext {
  server: RunningServer;
  key: string;
  /** When the connector held each code and when the bank prompted, by bank username (timing.ts). */
  holds: Map<string, number[]>;
  prompts: Map<string, number[]>;
  /** The sandbox bank its connector calls: its own process, or the server's own at /sandbox-bank/. */
  bankUrl: string;
}

/**
 * Starts one otpilot (role `all`) in this process on a fresh SQLite store, runs `body`, stops it and
 * deletes the store. `bankUrl`: a sandbox bank in its own process (OTPILOT_SANDBOX_URL); null, the
 * bank mounted in the server.
 */
async function withSqliteServer<T>(bankUrl: string | null, body: (ctx: SqliteContext) => Promise<T>): Promise<T> {
  const dataDir = mkdtempSync(join(tmpdir(), 'otpilot-bench-'));
  try {
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
      ...(bankUrl ? { OTPILOT_SANDBOX_URL: bankUrl } : {}),
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
    try {
      const key = server.bootstrap!.apiKey;
      return await body({ server, key, holds, prompts, bankUrl: bankUrl ?? `${server.url}/sandbox-bank/` });
    } finally {
      await server.close();
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/** Runs `body` with a sandbox bank in its own process (`otpilot sandbox-bank`), stopped afterwards. */
async function withBankProcess<T>(body: (bankUrl: string) => Promise<T>): Promise<T> {
  const procs = new Processes();
  try {
    const bank = await procs.launch(
      'sandbox bank',
      ['sandbox-bank', '--port', '0', '--host', '127.0.0.1'],
      process.env,
      /sandbox bank at (http:\S+)/,
    );
    const result = await body(bank.url);
    procs.assertAlive();
    return result;
  } finally {
    await procs.stopAll();
  }
}

const sqliteLogins = (ctx: SqliteContext) =>
  benchLogins(
    ctx.server,
    ctx.key,
    ctx.bankUrl,
    ctx.holds,
    ctx.prompts,
    {
      singleLogins: SINGLE_LOGINS,
      laneLogins: HANDOFF_LOGINS,
      lanes: HANDOFF_LANES,
      throughputAccounts: THROUGHPUT_ACCOUNTS,
      throughputRounds: THROUGHPUT_ROUNDS,
    },
    log,
  );

/**
 * The SQLite parts, each on the server `withSqliteServer` starts. The browser logins get a server of
 * their own with the bank mounted in it (their memory figures are of the server's process tree); the
 * others share one whose sandbox bank runs in its own process.
 */
async function runSqliteBenchmarks(only: string): Promise<Record<string, unknown>> {
  const result: Record<string, unknown> = {};
  const all = only === '' || only === 'sqlite';
  if (all || only === 'browser') {
    log('browser logins');
    Object.assign(
      result,
      await withSqliteServer(null, (ctx) =>
        benchBrowser(ctx.server.url, ctx.key, { logins: BROWSER_LOGINS, concurrent: BROWSER_CONCURRENT }),
      ),
    );
  }
  if (only === 'browser') return result;
  await withBankProcess((bankUrl) =>
    withSqliteServer(bankUrl, async (ctx) => {
      const { server, key, holds } = ctx;
      if (only === 'waiting') return Object.assign(result, await benchWaiting(server, key, WAITING_LOGINS));
      if (only === 'fints') return Object.assign(result, await benchFints(server, key, holds, FINTS_LOGINS, log));
      if (only === 'logins') return Object.assign(result, await sqliteLogins(ctx));
      if (all) {
        Object.assign(result, await sqliteLogins(ctx));
        Object.assign(result, await benchFints(server, key, holds, FINTS_LOGINS, log));
        Object.assign(result, await benchStatus(server, key, server.bootstrap!.sandboxAccountId!));
        Object.assign(result, await benchIngest(server, key));
        Object.assign(result, await benchWaiting(server, key, WAITING_LOGINS));
      }
      if (all || only === 'reconcile') Object.assign(result, await benchReconcile(server, key));
    }),
  );
  return result;
}

/**
 * Runs the benchmarks and prints one JSON object on the last line: the SQLite figures, then with
 * `BENCH_DATABASE_URL` (or `DATABASE_URL`) set the PostgreSQL ones (`pg_*` keys, absent otherwise).
 * `BENCH_ONLY` runs a part: `sqlite`, `pg`, one PostgreSQL phase (`pg-handoff`, `pg-claims`), or
 * `logins` (the SQLite hand-off, login ceiling and per-login server cost alone), `reconcile` (the reconciliation figures alone, on SQLite), `waiting` (the paused logins and their
 * idle cost alone, on SQLite), `fints` (the FinTS logins alone, on SQLite) or `browser` (browser-script
 * logins alone), `burst` (a burst of due logins, see burst.ts; both stores with a database URL; not part
 * of a full run: it takes several minutes), `storage` (`bytes_per_movement` alone, on SQLite and on PostgreSQL when a database
 * URL is set).
 */
export async function runBenchmarks(): Promise<void> {
  const only = process.env.BENCH_ONLY ?? '';
  const parts = [
    '',
    'sqlite',
    'logins',
    'pg',
    'pg-handoff',
    'pg-claims',
    'reconcile',
    'waiting',
    'fints',
    'browser',
    'storage',
    'burst',
  ];
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
  // `storage` runs on both stores itself (PostgreSQL when a database URL is set).
  if (only === '' || only === 'storage') Object.assign(result, await benchStorage(STORAGE_MOVEMENTS, databaseUrl));
  if (!pgOnly && only !== 'storage') Object.assign(result, await runSqliteBenchmarks(only));
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
