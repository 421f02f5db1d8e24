import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Worker } from 'node:worker_threads';
import type pg from 'pg';
import type { BenchAccount, Submission } from './client.js';
import type { PgLoginsReply, PgLoginsTask } from './pg-logins.js';
import type { Proc, Processes } from './processes.js';
import { percentile, round } from './stats.js';

/** What the PostgreSQL benchmarks share: sizes, accounts, clients, waits. */

export const SCALE = Number(process.env.BENCH_SCALE ?? '1');
export const scaled = (n: number) => Math.max(1, Math.round(n * SCALE));
export const HANDOFF_LOGINS = scaled(300);
export const HANDOFF_LANES = Number(process.env.BENCH_LANES ?? '20');
export const CLAIM_ACCOUNTS = scaled(1000);
export const CLAIM_WORKERS = 4;
/** Latency of every bank call of the claims phase's `slow` users, ms (the hand-off uses other users). */
export const BANK_SLOW_MS = 3000;
/** The scheduler queues at most 500 due accounts a tick: a short tick keeps it from pacing the claims. */
export const SCHEDULER_TICK_MS = 100;

/** BENCH_LOG_DIR: where each child's whole output goes (`<name>.log`), for looking into a run. */

export const log = (message: string) => process.stderr.write(`bench: ${message}\n`);
export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
export const run = promisify(execFile);

export async function createAccounts(
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
export function driveLogins(task: PgLoginsTask): Promise<{ submissions: Submission[]; seconds: number }> {
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
export async function until<T>(
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

export interface Context {
  procs: Processes;
  env: NodeJS.ProcessEnv;
  db: pg.Pool;
  bank: Proc;
  api: Proc;
  key: string;
  tag: string;
}

export const ms = (values: number[]) => ({ p50: round(percentile(values, 50)), p99: round(percentile(values, 99)) });
