import { Counter, collectDefaultMetrics, Gauge, Registry } from 'prom-client';

/**
 * This process's Prometheus metrics (its own registry: nothing global). Values are read when scraped.
 */
export function makeMetrics(source: {
  databaseUp(): boolean;
  /** Whether this process runs the scheduler tick now (null: not a worker). */
  leader: (() => boolean) | null;
  /** Sessions running in this process (null: not a worker). */
  running: (() => number) | null;
  /** Sessions claimed by this process since start (null: not a worker). */
  claimed: (() => number) | null;
}): () => Promise<{ contentType: string; text: string }> {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  new Gauge({
    name: 'otpilot_db_up',
    help: '1 while the database answers the health probe',
    registers: [registry],
    collect() {
      this.set(source.databaseUp() ? 1 : 0);
    },
  });
  const { leader, running, claimed } = source;
  if (leader)
    new Gauge({
      name: 'otpilot_scheduler_leader',
      help: '1 while this process holds the scheduler lock',
      registers: [registry],
      collect() {
        this.set(leader() ? 1 : 0);
      },
    });
  if (running)
    new Gauge({
      name: 'otpilot_sessions_running',
      help: 'Sessions (logins) running in this process, waiting ones included',
      registers: [registry],
      collect() {
        this.set(running());
      },
    });
  if (claimed) {
    let reported = 0;
    new Counter({
      name: 'otpilot_sessions_claimed_total',
      help: 'Sessions this process has claimed',
      registers: [registry],
      collect() {
        const now = claimed();
        this.inc(now - reported);
        reported = now;
      },
    });
  }
  return async () => ({ contentType: registry.contentType, text: await registry.metrics() });
}
