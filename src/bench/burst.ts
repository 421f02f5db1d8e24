import { fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import SQLite from 'better-sqlite3';
import pg from 'pg';
import { urlWithSchema } from '../store/db.js';
import type { BurstClientsReply, BurstClientsTask, BurstSubmission } from './burst-clients.js';
import { createAccounts, log, run, SCALE, sleep } from './pg-shared.js';
import { bankStats, CLI, Processes, READY } from './processes.js';
import { percentile, round } from './stats.js';

/**
 * `burst`: N scheduled accounts fall due in the same second, with otpilot's default settings, as
 * deployed: the sandbox bank, otpilot and the clients each in their own processes. SQLite: one
 * `otpilot start` with 4,000 accounts; PostgreSQL: an API process and 4 worker processes, 2,000.
 * A tenth of the accounts ask for an SMS code, which the clients read from the bank's phone and post
 * over the API. Figures: logins lost (target 0, with their reasons), time to drain, and the hand-off.
 */

export const BURST_SQLITE_ACCOUNTS = Math.max(10, Math.round(4000 * SCALE));
export const BURST_PG_ACCOUNTS = Math.max(10, Math.round(2000 * SCALE));
export const BURST_PG_WORKERS = 4;
/** Every tenth account asks for an SMS code. */
const OTP_EVERY = 10;
/** Time from the accounts' creation to the shared due second, ms (the clients are listening by then). */
const DUE_IN_MS = 3000;

/** What the bench reads from the store, whichever it is. */
interface Probe {
  query<T>(sqlite: string, postgres: string, params: unknown[]): Promise<T[]>;
  close(): Promise<void>;
}

function sqliteProbe(file: string): Probe {
  const db = new SQLite(file);
  db.pragma('busy_timeout = 10000');
  return {
    query: async <T>(text: string, _pg: string, params: unknown[]) => {
      const statement = db.prepare(text);
      if (statement.reader) return statement.all(...params) as T[];
      statement.run(...params);
      return [];
    },
    close: async () => {
      db.close();
    },
  };
}

function pgProbe(pool: pg.Pool): Probe {
  return {
    query: async <T>(_sqlite: string, text: string, params: unknown[]) => (await pool.query(text, params)).rows as T[],
    close: () => pool.end(),
  };
}

function driveClients(task: BurstClientsTask): Promise<{ submissions: BurstSubmission[]; errors: string[] }> {
  const child = fork(new URL('./burst-clients.js', import.meta.url), [], { stdio: 'inherit' });
  return new Promise((resolve, reject) => {
    child.once('message', (reply: BurstClientsReply) =>
      reply.ok ? resolve({ submissions: reply.submissions, errors: reply.errors }) : reject(new Error(reply.error)),
    );
    child.once('error', reject);
    child.once('exit', (code) => {
      if (code !== 0) reject(new Error(`burst clients exited ${code}`));
    });
    child.send(task);
  });
}

const load = () => loadavg().map((n) => round(n, 2));

/** One burst against otpilot on `store`; resolves with its figures. */
export async function benchBurst(store: 'sqlite' | 'pg', databaseUrl: string | null): Promise<Record<string, unknown>> {
  const count = store === 'sqlite' ? BURST_SQLITE_ACCOUNTS : BURST_PG_ACCOUNTS;
  const tag = randomBytes(4).toString('hex');
  const schema = `bench_burst_${tag}`;
  const procs = new Processes();
  const dataDir = mkdtempSync(join(tmpdir(), 'otpilot-bench-burst-'));
  let admin: pg.Client | null = null;
  let probe: Probe | null = null;
  let created = false;
  const interrupted = () => {
    procs.killNow();
    process.exit(130);
  };
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);
  try {
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      PORT: '0',
      HOST: '127.0.0.1',
      LOG_LEVEL: 'info',
      OTPILOT_MASTER_KEY: randomBytes(32).toString('hex'),
      OTPILOT_DATA_DIR: dataDir,
      OTPILOT_SANDBOX: 'false',
    };
    // Defaults everywhere else: no setting of the bench's own may hide what a default deployment does.
    for (const name of Object.keys(env))
      if (name.startsWith('OTPILOT_') && !['OTPILOT_MASTER_KEY', 'OTPILOT_DATA_DIR', 'OTPILOT_SANDBOX'].includes(name))
        delete env[name];
    delete env.DATABASE_URL;
    const bank = await procs.launch(
      'sandbox bank',
      ['sandbox-bank', '--port', '0', '--host', '127.0.0.1'],
      env,
      /sandbox bank at (http:\S+)/,
    );
    env.OTPILOT_SANDBOX_URL = bank.url;
    let api: { url: string };
    if (store === 'pg') {
      admin = new pg.Client({ connectionString: databaseUrl! });
      admin.on('error', () => {});
      await admin.connect();
      await admin.query(`create schema "${schema}"`);
      created = true;
      env.DATABASE_URL = urlWithSchema(databaseUrl!, schema);
      await run(process.execPath, [CLI, 'migrate'], { env, timeout: 60_000 });
      api = await procs.launch('API', ['start', '--role', 'api'], env, READY);
      await Promise.all(
        Array.from({ length: BURST_PG_WORKERS }, (_, i) =>
          procs.launch(`worker ${i + 1}`, ['start', '--role', 'worker'], env, READY),
        ),
      );
      const pool = new pg.Pool({ connectionString: env.DATABASE_URL, max: 2 });
      pool.on('error', () => {});
      probe = pgProbe(pool);
    } else {
      api = await procs.launch('otpilot', ['start'], env, READY);
      probe = sqliteProbe(join(dataDir, 'otpilot.db'));
    }
    const secrets = readFileSync(join(dataDir, 'first-start-secrets.txt'), 'utf8');
    const key = /API key\s+(otpk_\S+)/.exec(secrets)?.[1];
    if (!key) throw new Error('no API key in first-start-secrets.txt');

    log(`burst ${store}: creating ${count} accounts sharing a schedule (every ${OTP_EVERY}th asks for an SMS code)`);
    const usernames = Array.from({ length: count }, (_, i) => `${i % OTP_EVERY === 0 ? 'otp' : 'alice'}+${tag}n${i}`);
    const accounts = await createAccounts(api.url, key, usernames, { schedule: 'every 1h' }, 50);
    const ids = accounts.map((a) => a.id);
    const otp = accounts.filter((a) => a.username.startsWith('otp+'));
    // On a shared 2-core machine 4,000 first logins (90 days of history each) take about 20 minutes.
    const drainMs = Math.max(1_800_000, count * 600);
    const clients = driveClients({
      apiUrl: api.url,
      bankUrl: bank.url,
      key,
      accounts: otp,
      timeoutMs: drainMs,
    });

    // The scheduler jitters each account's runs (up to 10 % of the interval) so that a shared schedule
    // does not fall due in one second; a burst is what it prevents. So the due time is set here, the
    // same second for every account, and the real scheduler (default tick) queues them.
    const dueAt = Math.ceil((Date.now() + DUE_IN_MS) / 1000) * 1000;
    const like = `%+${tag}n%`;
    await probe.query(
      'update accounts set next_run_at = ? where name like ?',
      'update accounts set next_run_at = $1 where name like $2',
      [dueAt, like],
    );
    const loadStart = load();
    const bankBefore = await bankStats(bank);
    log(`burst ${store}: ${count} accounts due at ${new Date(dueAt).toISOString()}`);

    const deadline = Date.now() + drainMs;
    for (;;) {
      await sleep(500);
      procs.assertAlive();
      const [row] = await probe.query<{ sessions: number; active: number; due: number; accounts: number }>(
        `select (select count(*) from sessions s join accounts a on a.id = s.account_id where a.name like ?) as sessions,
                (select count(*) from sessions s join accounts a on a.id = s.account_id
                  where a.name like ? and s.state in ('queued', 'running', 'awaiting_assistance')) as active,
                (select count(*) from accounts where name like ? and next_run_at <= ?) as due,
                (select count(distinct s.account_id) from sessions s join accounts a on a.id = s.account_id where a.name like ?) as accounts`,
        `select (select count(*) from sessions s join accounts a on a.id = s.account_id where a.name like $1)::int as sessions,
                (select count(*) from sessions s join accounts a on a.id = s.account_id
                  where a.name like $1 and s.state in ('queued', 'running', 'awaiting_assistance'))::int as active,
                (select count(*) from accounts where name like $1 and next_run_at <= $2)::int as due,
                (select count(distinct s.account_id) from sessions s join accounts a on a.id = s.account_id where a.name like $1)::int as accounts`,
        store === 'sqlite' ? [like, like, like, Date.now(), like] : [like, Date.now()],
      );
      if (row && Number(row.accounts) >= count && Number(row.active) === 0 && Number(row.due) === 0) break;
      if (Date.now() > deadline) throw new Error(`burst ${store}: not drained in time (${JSON.stringify(row)})`);
    }
    const loadEnd = load();
    const { submissions, errors } = await clients;
    if (errors.length > 0) log(`burst ${store}: ${errors.length} client errors, first: ${errors[0]}`);

    const sessions = await probe.query<{
      account_id: string;
      state: string;
      category: string | null;
      message: string | null;
      queued_at: number;
      started_at: number | null;
      finished_at: number | null;
    }>(
      `select s.account_id, s.state, s.failure_category as category, s.failure_message as message, s.queued_at,
              s.started_at, s.finished_at
       from sessions s join accounts a on a.id = s.account_id where a.name like ?`,
      `select s.account_id, s.state, s.failure_category as category, s.failure_message as message, s.queued_at,
              s.started_at, s.finished_at
       from sessions s join accounts a on a.id = s.account_id where a.name like $1`,
      [like],
    );
    const lost = sessions.filter((s) => s.state !== 'succeeded');
    const reasons: Record<string, number> = {};
    for (const s of lost) {
      const why = `${s.state} ${s.category ?? ''}: ${(s.message ?? '').slice(0, 120)}`;
      reasons[why] = (reasons[why] ?? 0) + 1;
    }
    const succeededAccounts = new Set(sessions.filter((s) => s.state === 'succeeded').map((s) => s.account_id));
    const verdicts = await probe.query<{ account_id: string; submitted_at: number; judged_at: number | null }>(
      `select c.account_id, c.submitted_at, c.judged_at from code_submissions c join accounts a on a.id = c.account_id
       where a.name like ?`,
      `select c.account_id, c.submitted_at, c.judged_at from code_submissions c join accounts a on a.id = c.account_id
       where a.name like $1`,
      [like],
    );
    const judged = new Map(verdicts.map((v) => [v.account_id, Number(v.judged_at)]));
    const stored = new Map(verdicts.map((v) => [v.account_id, Number(v.submitted_at)]));
    const handoff: number[] = [];
    const answer: number[] = [];
    const toStore: number[] = [];
    const storeToVerdict: number[] = [];
    for (const s of submissions) {
      answer.push(s.answeredAt - s.sentAt);
      const at = judged.get(s.accountId);
      const kept = stored.get(s.accountId);
      if (at) handoff.push(at - s.sentAt);
      if (kept) toStore.push(kept - s.sentAt);
      if (at && kept) storeToVerdict.push(at - kept);
    }
    const finished = sessions.map((s) => Number(s.finished_at ?? 0));
    const queued = sessions.map((s) => Number(s.queued_at));
    const bank2 = await bankStats(bank);
    const figures = {
      accounts: count,
      otp_accounts: otp.length,
      ...(store === 'pg' ? { workers: BURST_PG_WORKERS } : {}),
      lost: lost.length,
      accounts_without_success: ids.filter((id) => !succeededAccounts.has(id)).length,
      lost_reasons: reasons,
      sessions: sessions.length,
      drain_s: round((Math.max(...finished) - dueAt) / 1000, 1),
      queued_s: round((Math.max(...queued) - dueAt) / 1000, 1),
      handoff_p50_ms: round(percentile(handoff, 50)),
      handoff_p99_ms: round(percentile(handoff, 99)),
      handoff_samples: handoff.length,
      // The hand-off in two: the code stored by the API, then the bank's verdict recorded by the worker.
      sent_to_stored_p99_ms: round(percentile(toStore, 99)),
      stored_to_verdict_p99_ms: round(percentile(storeToVerdict, 99)),
      code_post_p99_ms: round(percentile(answer, 99)),
      client_errors: errors.length,
      bank_logins: bank2.logins - bankBefore.logins,
      bank_max_active_logins: bank2.maxActiveLogins,
      load_avg_start: loadStart,
      load_avg_end: loadEnd,
    };
    log(`burst ${store}: ${JSON.stringify(figures)}`);
    return figures;
  } finally {
    process.removeListener('SIGINT', interrupted);
    process.removeListener('SIGTERM', interrupted);
    await procs.stopAll();
    await probe?.close().catch(() => {});
    if (admin) {
      if (created) await admin.query(`drop schema if exists "${schema}" cascade`).catch(() => {});
      await admin.end().catch(() => {});
    }
    rmSync(dataDir, { recursive: true, force: true, maxRetries: 5 });
  }
}

/** `BENCH_ONLY=burst`: SQLite, then PostgreSQL when a database URL is set. */
export async function runBurstBenchmarks(databaseUrl: string | null): Promise<Record<string, unknown>> {
  // BENCH_BURST_STORES=sqlite|pg runs one store only (a quicker look at one).
  const stores = process.env.BENCH_BURST_STORES ?? 'sqlite,pg';
  const result: Record<string, unknown> = {};
  if (stores.includes('sqlite')) result.sqlite = await benchBurst('sqlite', null);
  if (databaseUrl && stores.includes('pg')) result.pg = await benchBurst('pg', databaseUrl);
  return result;
}
