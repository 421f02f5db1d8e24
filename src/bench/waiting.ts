import { monitorEventLoopDelay } from 'node:perf_hooks';
import { setTimeout as delay } from 'node:timers/promises';
import { FALLBACK_MAX_MS } from '../events/wait.js';
import type { RunningServer } from '../server.js';
import { createAccounts, makeBenchClient } from './client.js';
import { round } from './stats.js';

const log = (message: string) => process.stderr.write(`bench: ${message}\n`);

/**
 * What waiting costs while nothing happens: once the waits have backed off to their longest fallback
 * (`FALLBACK_MAX_MS`), the process's CPU share (of one core) and the event loop's delay p99 over two
 * such intervals. The server runs in this process and nothing else is sent meanwhile.
 */
async function measureIdle(): Promise<{ cpu_share: number; loop_delay_p99_ms: number }> {
  await delay(FALLBACK_MAX_MS * 1.5);
  const histogram = monitorEventLoopDelay({ resolution: 10 });
  histogram.enable();
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  await delay(FALLBACK_MAX_MS * 2);
  const cpu = process.cpuUsage(cpuBefore);
  const elapsedMs = performance.now() - started;
  histogram.disable();
  return {
    cpu_share: round((cpu.user + cpu.system) / 1000 / elapsedMs, 3),
    loop_delay_p99_ms: round(histogram.percentile(99) / 1e6, 1),
  };
}

export async function benchWaiting(server: RunningServer, key: string, count: number) {
  log(`waiting: ${count} assisted logins paused at once`);
  // The longest code window, so no wait ends while the idle cost is measured.
  const accounts = await createAccounts(server, key, 'w', count, { assist_timeout_seconds: 3600 });
  const client = makeBenchClient(server.url, key);
  for (let start = 0; start < accounts.length; start += 100) {
    await Promise.all(accounts.slice(start, start + 100).map((a) => client.scrape(a.id)));
  }
  const db = server.store.db;
  const deadline = Date.now() + 600_000;
  let pending = 0;
  while (pending < accounts.length) {
    if (Date.now() > deadline) throw new Error(`only ${pending} of ${accounts.length} logins reached the code prompt`);
    await new Promise((resolve) => setTimeout(resolve, 500));
    const row = await db
      .selectFrom('assistance_requests')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('state', '=', 'pending')
      .where('account_id', 'in', (q) => q.selectFrom('accounts').select('id').where('name', 'like', 'otp+w%'))
      .executeTakeFirstOrThrow();
    pending = Number(row.n);
  }
  const idle = await measureIdle();
  global.gc?.();
  const rssMb = Math.round(process.memoryUsage().rss / 1024 / 1024);
  const lost = await db
    .selectFrom('sessions')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('state', '=', 'failed')
    .executeTakeFirstOrThrow();
  return {
    waiting_logins: { count: pending, rss_mb: rssMb, failed: Number(lost.n) },
    idle_wait_cpu: { waiting: pending, ...idle },
  };
}
