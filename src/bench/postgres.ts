import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { promisify } from 'node:util';
import { Worker } from 'node:worker_threads';
import pg from 'pg';
import { loadConfig } from '../config.js';
import { channelFor } from '../events/pg-bus.js';
import { type RunningServer, startServer } from '../server.js';
import { urlWithSchema } from '../store/db.js';
import type { BenchAccount, Submission } from './client.js';
import type { PgLoginsReply, PgLoginsTask } from './pg-logins.js';
import { bankStats, CLI, metric, type Proc, Processes, READY } from './processes.js';
import { absoluteNow, percentile, round } from './stats.js';
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

const SCALE = Number(process.env.BENCH_SCALE ?? '1');
const scaled = (n: number) => Math.max(1, Math.round(n * SCALE));
const HANDOFF_LOGINS = scaled(300);
const HANDOFF_LANES = Number(process.env.BENCH_LANES ?? '20');
const CLAIM_ACCOUNTS = scaled(1000);
const CLAIM_WORKERS = 4;
/** Latency of every bank call of the claims phase's `slow` users, ms (the hand-off uses other users). */
const BANK_SLOW_MS = 3000;
/** The scheduler queues at most 500 due accounts a tick: a short tick keeps it from pacing the claims. */
const SCHEDULER_TICK_MS = 100;

/** BENCH_LOG_DIR: where each child's whole output goes (`<name>.log`), for looking into a run. */
const _LOG_DIR = process.env.BENCH_LOG_DIR || null;

const log = (message: string) => process.stderr.write(`bench: ${message}\n`);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const run = promisify(execFile);

async function createAccounts(
  apiUrl: string,
  key: string,
  usernames: string[],
  config: Record<string, unknown>,
  parallel = 25,
): Promise<BenchAccount[]> {
  const accounts: BenchAccount[] = [];
  for (let start = 0; start < usernames.length; start += parallel) {
    const batch = usernames.slice(start, start + parallel);
    const ids = await Promise.all(
      batch.map(async (username) => {
        const response = await fetch(`${apiUrl}/v1/accounts`, {
          method: 'POST',
          headers: { authorization: `Api-Key ${key}`, 'content-type': 'application/json' },
          body: JSON.stringify({
            bank_id: 'sandbox',
            name: username,
            credentials: { username, password: 'bench' },
            config,
          }),
        });
        if (response.status !== 201) throw new Error(`create answered ${response.status}: ${await response.text()}`);
        return ((await response.json()) as { id: string }).id;
      }),
    );
    for (const [i, username] of batch.entries()) accounts.push({ id: ids[i]!, username });
  }
  return accounts;
}

/** Runs the clients of the hand-off on a worker thread (same process clock, its own event loop). */
function driveLogins(task: PgLoginsTask): Promise<{ submissions: Submission[]; seconds: number }> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL('./pg-logins.js', import.meta.url), { workerData: task });
    worker.once('message', (reply: PgLoginsReply) => {
      void worker.terminate();
      if (reply.ok) resolve(reply);
      else reject(new Error(reply.error));
    });
    worker.once('error', reject);
  });
}

/** Polls `read` every `everyMs` until `done` holds; throws after `timeoutMs` (and if a process died). */
async function until<T>(
  procs: Processes,
  what: string,
  read: () => Promise<T>,
  done: (value: T) => boolean,
  timeoutMs: number,
  everyMs = 50,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    procs.assertAlive();
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms (last: ${JSON.stringify(value)})`);
    await sleep(everyMs);
  }
}

interface Context {
  procs: Processes;
  env: NodeJS.ProcessEnv;
  db: pg.Pool;
  bank: Proc;
  api: Proc;
  key: string;
  tag: string;
}

const ms = (values: number[]) => ({ p50: round(percentile(values, 50)), p99: round(percentile(values, 99)) });

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

async function benchClaims(ctx: Context, workerEnv: NodeJS.ProcessEnv) {
  log(`pg claims: creating ${CLAIM_ACCOUNTS} scheduled accounts`);
  const accounts = await createAccounts(
    ctx.api.url,
    ctx.key,
    // `slow` users: every bank call takes BANK_SLOW_MS, as real bank logins take seconds. Claimed logins
    // then wait on the bank (timers, no CPU) instead of crowding out the claiming being measured.
    Array.from({ length: CLAIM_ACCOUNTS }, (_, i) => `slow+${ctx.tag}c${i}`),
    { schedule: 'every 1h' },
  );
  const ids = accounts.map((a) => a.id);
  log(`pg claims: starting ${CLAIM_WORKERS} worker processes`);
  const workers = await Promise.all(
    Array.from({ length: CLAIM_WORKERS }, (_, i) =>
      ctx.procs.launch(`worker ${i + 1}`, ['start', '--role', 'worker'], workerEnv, READY),
    ),
  );
  // One of them holds the scheduler lock before anything falls due.
  await until(
    ctx.procs,
    'scheduler leader',
    async () => (await Promise.all(workers.map((w) => metric(w, 'otpilot_scheduler_leader')))).reduce((a, b) => a + b),
    (leaders) => leaders === 1,
    15_000,
  );
  const claimedBefore = await Promise.all(workers.map((w) => metric(w, 'otpilot_sessions_claimed_total')));
  const bankBefore = await bankStats(ctx.bank);

  // The backlog appears at once (one insert, as a big scheduler tick or an outage's end would leave
  // it), so the figure is the claiming, not the scheduler's queueing pace.
  log(`pg claims: ${CLAIM_ACCOUNTS} sessions queued at once, ${CLAIM_WORKERS} workers claiming`);
  const dueAt = Date.now();
  await ctx.db.query(
    `insert into sessions (id, org_id, account_id, state, trigger, stages, movements_new, queued_at)
     select 'ses_bench_' || a.id, a.org_id, a.id, 'queued', 'schedule', '[]', 0, $1
     from accounts a where a.id = any($2)`,
    [dueAt, ids],
  );
  // Wake the workers the way an API process would (they also poll, so this only saves the wait).
  const schema = (await ctx.db.query<{ s: string }>('select current_schema() as s')).rows[0]!.s;
  await ctx.db.query('select pg_notify($1, $2)', [
    channelFor(schema),
    JSON.stringify({ o: 'bench', t: ['work'], e: [] }),
  ]);
  const started = await until(
    ctx.procs,
    'every session started',
    async () =>
      (
        await ctx.db.query<{
          started: number;
          first_started: number | null;
          last_started: number | null;
          first_queued: number | null;
          last_queued: number | null;
        }>(
          // Each account's first session: a run repeated after a failure does not count as a claim here.
          `with firsts as (
             select account_id, min(started_at) as started, min(queued_at) as queued
             from sessions where account_id = any($1) group by account_id
           )
           select count(started)::int as started, min(started) as first_started, max(started) as last_started,
                  min(queued) as first_queued, max(queued) as last_queued
           from firsts`,
          [ids],
        )
      ).rows[0]!,
    (row) => row.started >= CLAIM_ACCOUNTS,
    Math.max(60_000, CLAIM_ACCOUNTS * 50),
    100,
  );
  const firstStarted = Number(started.first_started);
  const lastStarted = Number(started.last_started);

  log('pg claims: waiting for every login to end');
  await until(
    ctx.procs,
    'every session ended',
    async () =>
      (
        await ctx.db.query<{ accounts: number; active: number }>(
          `select count(distinct account_id)::int as accounts,
                  (count(*) filter (where state not in ('succeeded', 'failed', 'cancelled')))::int as active
           from sessions where account_id = any($1)`,
          [ids],
        )
      ).rows[0]!,
    (row) => row.accounts >= CLAIM_ACCOUNTS && row.active === 0,
    Math.max(120_000, CLAIM_ACCOUNTS * 200),
    250,
  );
  const runs = await ctx.db.query<{ account_id: string; runs: number; succeeded: number }>(
    `select account_id, count(*)::int as runs, (count(*) filter (where state = 'succeeded'))::int as succeeded
     from sessions where account_id = any($1) group by account_id`,
    [ids],
  );
  const twice = runs.rows.filter((r) => r.runs > 1);
  const failed = runs.rows.reduce((n, r) => n + (r.runs - r.succeeded), 0);
  const bankLogins = (await bankStats(ctx.bank)).logins - bankBefore.logins;
  const claimedAfter = await Promise.all(workers.map((w) => metric(w, 'otpilot_sessions_claimed_total')));
  const byWorker = claimedAfter.map((n, i) => n - claimedBefore[i]!);
  // Two sessions of one account whose [started, finished] overlap: the same bank login run twice at once.
  const overlapping = (
    await ctx.db.query<{ n: number }>(
      `select count(*)::int as n from sessions a join sessions b on a.account_id = b.account_id and a.id < b.id
       where a.account_id = any($1) and a.started_at is not null and b.started_at is not null
         and a.started_at < coalesce(b.finished_at, 9e15) and b.started_at < coalesce(a.finished_at, 9e15)`,
      [ids],
    )
  ).rows[0]!.n;
  if (twice.length > 0) {
    const story = await ctx.db.query<{ story: string; n: number }>(
      `select story, count(*)::int as n from (
         select account_id, string_agg(state || coalesce(' (' || failure_category || ')', ''), ' → ' order by queued_at, id) as story
         from sessions where account_id = any($1) group by account_id having count(*) > 1
       ) s group by story order by n desc limit 3`,
      [ids],
    );
    log(
      `WARNING: ${twice.length} accounts had more than one session, ${overlapping} pairs overlapping in time (${story.rows
        .map((r) => `${r.n}× ${r.story}`)
        .join('; ')})`,
    );
  } else if (overlapping > 0) log(`WARNING: ${overlapping} session pairs of one account overlap in time`);
  if (runs.rows.length !== CLAIM_ACCOUNTS)
    log(`WARNING: ${CLAIM_ACCOUNTS - runs.rows.length} of ${CLAIM_ACCOUNTS} due accounts got no session`);
  if (bankLogins !== CLAIM_ACCOUNTS)
    log(`WARNING: the bank saw ${bankLogins} logins for ${CLAIM_ACCOUNTS} due accounts`);
  if (byWorker.reduce((a, b) => a + b, 0) !== CLAIM_ACCOUNTS)
    log(`WARNING: the workers report ${byWorker.join('+')} claims for ${CLAIM_ACCOUNTS} sessions`);
  if (failed > 0) {
    const why = await ctx.db.query<{ state: string; category: string | null; message: string | null; n: number }>(
      `select state, failure_category as category, left(failure_message, 200) as message, count(*)::int as n
       from sessions where account_id = any($1) and state <> 'succeeded' group by 1, 2, 3 order by n desc limit 5`,
      [ids],
    );
    log(
      `WARNING: ${failed} of the scheduled logins did not succeed: ${why.rows
        .map((r) => `${r.n}× ${r.state} ${r.category ?? ''} ${r.message ?? ''}`)
        .join('; ')}`,
    );
  }
  const spanS = Math.max(lastStarted - firstStarted, 1) / 1000;
  return {
    pg_claims_per_s: Math.round(CLAIM_ACCOUNTS / spanS),
    pg_claims_from_due_per_s: Math.round(CLAIM_ACCOUNTS / (Math.max(lastStarted - dueAt, 1) / 1000)),
    pg_claims: {
      sessions: CLAIM_ACCOUNTS,
      workers: CLAIM_WORKERS,
      first_to_last_started_ms: lastStarted - firstStarted,
      due_to_first_started_ms: firstStarted - dueAt,
      due_to_last_started_ms: lastStarted - dueAt,
      first_to_last_queued_ms: Number(started.last_queued) - Number(started.first_queued),
      by_worker: byWorker,
      ran_twice: twice.length,
      overlapping,
      failed,
    },
  };
}

/** Runs the PostgreSQL benchmarks against the server at `databaseUrl`; returns their `pg_*` keys. */
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
