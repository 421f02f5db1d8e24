import { spawn } from 'node:child_process';
import { monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';
import { setTimeout as delay } from 'node:timers/promises';
import { FALLBACK_MAX_MS } from '../events/waiters.js';
import type { RunningServer } from '../server.js';
import { createAccounts, makeBenchClient } from './client.js';
import { round } from './stats.js';

const log = (message: string) => process.stderr.write(`bench: ${message}\n`);

/** How long the idle cost is measured, ms: two of the longest fallback intervals. */
const WINDOW_MS = FALLBACK_MAX_MS * 2;

/** The idle cost with this many logins waiting. */
interface IdleFigures {
  waiting: number;
  /** CPU time of the process (every thread) over the window, as a share of one core. */
  cpu_share: number;
  /** The event loop's delay p99 over the window, ms (10 ms resolution). */
  loop_delay_p99_ms: number;
  /** The same of an empty Node process beside it meanwhile: what the machine's scheduling adds alone. */
  machine_delay_p99_ms: number;
  /** Fallback queries the process ran in the window (each covers up to 500 waits). */
  fallback_queries: number;
  /** Garbage collections in the window: how many, their pauses in all and the longest, ms. */
  gc: { count: number; total_ms: number; max_ms: number };
}

/** An empty Node process's event-loop delay p99 over `ms` (ms): the machine's share of any delay. */
function emptyLoopDelay(ms: number): Promise<number> {
  const script = `const h=require('node:perf_hooks').monitorEventLoopDelay({resolution:10});h.enable();setTimeout(()=>{h.disable();process.stdout.write(String(h.percentile(99)/1e6))},${ms})`;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
    });
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve(Number(out)) : reject(new Error(`probe exited ${code}`))));
  });
}

/**
 * What waiting costs while nothing happens: once the waits have backed off to their longest fallback
 * (`FALLBACK_MAX_MS`), the process's CPU share (of one core) and the event loop's delay p99 over two
 * such intervals. The server runs in this process and nothing else is sent meanwhile.
 */
async function measureIdle(server: RunningServer, waiting: number): Promise<IdleFigures> {
  await delay(FALLBACK_MAX_MS * 1.5);
  const histogram = monitorEventLoopDelay({ resolution: 10 });
  const machine = emptyLoopDelay(WINDOW_MS);
  const pauses: number[] = [];
  const gc = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) pauses.push(entry.duration);
  });
  gc.observe({ entryTypes: ['gc'] });
  histogram.enable();
  const checksBefore = server.waiters.stats().checks;
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  await delay(WINDOW_MS);
  const cpu = process.cpuUsage(cpuBefore);
  const elapsedMs = performance.now() - started;
  histogram.disable();
  gc.disconnect();
  return {
    waiting,
    cpu_share: round((cpu.user + cpu.system) / 1000 / elapsedMs, 3),
    loop_delay_p99_ms: round(histogram.percentile(99) / 1e6, 1),
    machine_delay_p99_ms: round(await machine, 1),
    fallback_queries: server.waiters.stats().checks - checksBefore,
    gc: {
      count: pauses.length,
      total_ms: round(
        pauses.reduce((a, b) => a + b, 0),
        1,
      ),
      max_ms: round(Math.max(0, ...pauses), 1),
    },
  };
}

/** Starts `count` assisted logins (accounts `otp+<prefix>N`) and waits until all wait for their code. */
async function pauseLogins(server: RunningServer, key: string, prefix: string, count: number): Promise<number> {
  // The longest code window, so no wait ends while the idle cost is measured.
  const accounts = await createAccounts(server, key, prefix, count, { assist_timeout_seconds: 3600 });
  const client = makeBenchClient(server.url, key);
  for (let start = 0; start < accounts.length; start += 100) {
    await Promise.all(accounts.slice(start, start + 100).map((a) => client.scrape(a.id)));
  }
  const ids = new Set(accounts.map((a) => a.id));
  const deadline = Date.now() + 600_000;
  for (;;) {
    const rows = await server.store.db
      .selectFrom('assistance_requests')
      .select('account_id')
      .where('state', '=', 'pending')
      .execute();
    const pending = rows.filter((row) => ids.has(row.account_id)).length;
    if (pending === accounts.length) return pending;
    if (Date.now() > deadline) throw new Error(`only ${pending} of ${accounts.length} logins reached the code prompt`);
    await delay(500);
  }
}

/**
 * `count` logins waiting at once, reached in two halves: the idle cost is measured with half of them
 * waiting and with all (`idle_wait_cpu.n<waiting>`), then the memory and lost logins of all.
 */
export async function benchWaiting(server: RunningServer, key: string, count: number) {
  const half = Math.max(1, Math.round(count / 2));
  const idle: Record<string, IdleFigures> = {};
  let waiting = 0;
  for (const [prefix, n] of [
    ['w', half],
    ['v', count - half],
  ] as const) {
    if (n === 0) continue;
    log(`waiting: ${n} more assisted logins paused (${waiting + n} in all)`);
    waiting += await pauseLogins(server, key, prefix, n);
    idle[`n${waiting}`] = await measureIdle(server, waiting);
    log(`waiting: ${JSON.stringify(idle[`n${waiting}`])}`);
  }
  global.gc?.();
  const rssMb = Math.round(process.memoryUsage().rss / 1024 / 1024);
  const lost = await server.store.db
    .selectFrom('sessions')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('state', '=', 'failed')
    .executeTakeFirstOrThrow();
  return {
    waiting_logins: { count: waiting, rss_mb: rssMb, failed: Number(lost.n) },
    idle_wait_cpu: idle,
  };
}
