import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import pg from 'pg';
import { loadConfig } from '../config.js';
import { type RunningServer, startServer } from '../server.js';
import { urlWithSchema } from '../store/db.js';
import { benchClaims } from './pg-claims.js';
import {
  BANK_SLOW_MS,
  type Context,
  createAccounts,
  driveLogins,
  HANDOFF_LANES,
  HANDOFF_LOGINS,
  log,
  ms,
  run,
  SCHEDULER_TICK_MS,
  sleep,
} from './pg-shared.js';
import { CLI, Processes, READY } from './processes.js';
import { absoluteNow, round } from './stats.js';
import { timingConnectors } from './timing.js';

/**
 * The PostgreSQL benchmarks (`BENCH_DATABASE_URL` or `DATABASE_URL`): otpilot as it is deployed on
 * PostgreSQL, as OS processes (`node dist/cli.js …`) sharing a fresh schema that is dropped at the end.
 *
 * - `pg_handoff_ms`: a code posted to an API process reaching the connector in a worker. The worker
 *   runs inside this process (`startServer({ role: 'worker' })`) so its "connector holds the code"
 *   time and the clients' times are on one clock; the clients run on a worker thread.
 * - `pg_claims_per_s`: four worker processes taking a backlog of queued logins that appears at once.
 */

async function benchHandoff(ctx: Context) {
  const holds = new Map<string, number[]>();
  const prompts = new Map<string, number[]>();
  const loaded = loadConfig({ ...ctx.env, LOG_LEVEL: 'silent' });
  if (!loaded.ok) throw new Error(loaded.errors.join('; '));
  let worker: RunningServer | null = await startServer({
    config: loaded.config,
    role: 'worker',
    printBootstrap: () => {},
    connectors: timingConnectors(holds, prompts),
  });
  // When each `asr:<request id>` wake-up (a code was stored, sent by the API process with NOTIFY)
  // reached this worker: splits the hand-off into the wake-up and what the worker does after it.
  const wakes = new Map<string, number>();
  const unsubscribe = worker.bus.subscribeAll((topic) => {
    if (topic.startsWith('asr:') && !wakes.has(topic)) wakes.set(topic.slice(4), absoluteNow());
  });
  const loop = monitorEventLoopDelay({ resolution: 1 });
  try {
    const lanes = Math.min(HANDOFF_LANES, HANDOFF_LOGINS);
    const perLane = Math.ceil(HANDOFF_LOGINS / lanes);
    const accounts = await createAccounts(
      ctx.api.url,
      ctx.key,
      Array.from({ length: lanes }, (_, i) => `otp+${ctx.tag}h${i}`),
      {},
    );
    const task = { apiUrl: ctx.api.url, bankUrl: ctx.bank.url, key: ctx.key, accounts };
    // A first login reads 90 days of history: a warm-up round, not measured (as for logins_per_s).
    log(`pg hand-off: warm-up, one assisted login on each of ${lanes} accounts`);
    await driveLogins({ ...task, perAccount: 1 });
    log(`pg hand-off: ${perLane * lanes} assisted logins (${lanes} at a time), API process → worker in this process`);
    loop.enable();
    const result = await driveLogins({ ...task, perAccount: perLane });
    loop.disable();
    ctx.procs.assertAlive();
    // The requests of each account in login order (the warm-up's first), to match the wake-ups.
    const requests = await ctx.db.query<{ id: string; account_id: string }>(
      'select id, account_id from assistance_requests where account_id = any($1) order by created_at, id',
      [accounts.map((a) => a.id)],
    );
    const requestIds = new Map<string, string[]>();
    for (const row of requests.rows)
      requestIds.set(row.account_id, [...(requestIds.get(row.account_id) ?? []), row.id]);
    const accountOf = new Map(accounts.map((a) => [a.username, a.id]));
    const afterResponse: number[] = [];
    const afterRequest: number[] = [];
    const wakeAfterResponse: number[] = [];
    const wakeToHold: number[] = [];
    for (const s of result.submissions) {
      const held = holds.get(s.username)?.[s.index + 1];
      if (held === undefined) throw new Error(`no hold recorded for ${s.username} #${s.index}`);
      // As on SQLite: 0 when the connector already held the code before the answer reached the client.
      afterResponse.push(Math.max(0, held - s.answeredAt));
      afterRequest.push(held - s.sentAt);
      const requestId = requestIds.get(accountOf.get(s.username)!)?.[s.index + 1];
      const woke = requestId === undefined ? undefined : wakes.get(requestId);
      if (woke !== undefined) {
        wakeAfterResponse.push(woke - s.answeredAt);
        wakeToHold.push(held - woke);
      }
    }
    const closing = worker;
    worker = null;
    unsubscribe();
    await closing.close();
    return {
      pg_handoff_ms: ms(afterResponse),
      pg_handoff_from_request_ms: ms(afterRequest),
      pg_handoff_samples: afterResponse.length,
      pg_handoff_detail: {
        // Negative: the wake-up reached the worker before the 202 reached the client.
        wake_after_response_ms: ms(wakeAfterResponse),
        wake_to_hold_ms: ms(wakeToHold),
        woken_samples: wakeAfterResponse.length,
        worker_loop_delay_ms: { p50: round(loop.percentile(50) / 1e6), p99: round(loop.percentile(99) / 1e6) },
        logins_per_s: round(result.submissions.length / result.seconds, 1),
      },
    };
  } finally {
    loop.disable();
    unsubscribe();
    await worker?.close();
  }
}

export async function runPostgresBenchmarks(
  databaseUrl: string,
  phases: { handoff: boolean; claims: boolean } = { handoff: true, claims: true },
): Promise<Record<string, unknown>> {
  const tag = randomBytes(4).toString('hex');
  const schema = `bench_${tag}`;
  const procs = new Processes();
  const admin = new pg.Client({ connectionString: databaseUrl });
  admin.on('error', (error) => log(`pg: admin connection: ${error.message}`));
  await admin.connect();
  const dataDir = mkdtempSync(join(tmpdir(), 'otpilot-bench-pg-'));
  let created = false;
  let db: pg.Pool | null = null;
  const dropSchema = async () => {
    if (!created) return;
    try {
      await admin.query(`drop schema if exists "${schema}" cascade`);
      created = false;
    } catch (error) {
      log(`pg: could not drop schema ${schema}: ${error instanceof Error ? error.message : String(error)}`);
    }
  };
  // Ctrl-C or a kill during the run: the children go too, then the schema (best effort, 5 s at most).
  const interrupted = (signal: NodeJS.Signals) => {
    log(`pg: ${signal}: stopping the children and dropping schema ${schema}`);
    procs.killNow();
    rmSync(dataDir, { recursive: true, force: true });
    setTimeout(() => process.exit(130), 5000).unref();
    void sleep(200)
      .then(dropSchema)
      .finally(() => process.exit(130));
  };
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);
  try {
    const server = (await admin.query<{ server_version: string }>('show server_version')).rows[0]!.server_version;
    await admin.query(`create schema "${schema}"`);
    created = true;
    log(`pg: schema ${schema} on PostgreSQL ${server}`);
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      PORT: '0',
      HOST: '127.0.0.1',
      LOG_LEVEL: 'info',
      DATABASE_URL: urlWithSchema(databaseUrl, schema),
      OTPILOT_MASTER_KEY: randomBytes(32).toString('hex'),
      OTPILOT_DATA_DIR: dataDir,
      OTPILOT_SANDBOX: 'false',
      OTPILOT_ALLOW_PRIVATE_URLS: 'true',
      OTPILOT_CODE_RATE_LIMIT: '1000000',
      OTPILOT_WORKER_CONCURRENCY: '1000',
      OTPILOT_BANK_CONCURRENCY: '',
    };
    const bank = await procs.launch(
      'sandbox bank',
      ['sandbox-bank', '--port', '0', '--host', '127.0.0.1', '--slow-ms', String(BANK_SLOW_MS)],
      env,
      /sandbox bank at (http:\S+)/,
    );
    env.OTPILOT_SANDBOX_URL = bank.url;
    await run(process.execPath, [CLI, 'migrate'], { env, timeout: 60_000 });
    const api = await procs.launch('API', ['start', '--role', 'api'], env, READY);
    const secrets = readFileSync(join(dataDir, 'first-start-secrets.txt'), 'utf8');
    const key = /API key\s+(otpk_\S+)/.exec(secrets)?.[1];
    if (!key) throw new Error('no API key in first-start-secrets.txt');
    db = new pg.Pool({ connectionString: env.DATABASE_URL, max: 2 });
    // An idle connection that drops is replaced on next use; unheard, its error would end the run.
    db.on('error', () => {});
    const ctx: Context = { procs, env, db, bank, api, key, tag };
    const result: Record<string, unknown> = { pg_server: server };
    if (phases.handoff) Object.assign(result, await benchHandoff(ctx));
    if (phases.claims)
      Object.assign(
        result,
        await benchClaims(ctx, {
          ...env,
          OTPILOT_SCHEDULER_TICK_MS: String(SCHEDULER_TICK_MS),
          // 500 logins a worker (the default) need more than 10 connections when they all end at once;
          // 4 × (16 + 3) plus the API's stays under PostgreSQL's default max_connections of 100.
          OTPILOT_WORKER_CONCURRENCY: '500',
          OTPILOT_PG_POOL_SIZE: '16',
        }),
      );
    return result;
  } finally {
    process.removeListener('SIGINT', interrupted);
    process.removeListener('SIGTERM', interrupted);
    await procs.stopAll();
    await db?.end().catch(() => {});
    await dropSchema();
    await admin.end().catch(() => {});
    rmSync(dataDir, { recursive: true, force: true });
  }
}
