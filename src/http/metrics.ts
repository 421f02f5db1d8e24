import { Counter, collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import type { Labelled, StoreFigures } from '../metrics/store-figures.js';

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
  /** Instance-wide figures read from the store at scrape time (null: none). */
  figures?: (() => Promise<StoreFigures>) | null;
}): () => Promise<{ contentType: string; text: string }> {
  const registry = new Registry();
  let current: StoreFigures | null = null;
  const storeGauge = (name: string, help: string, labelNames: string[], pick: (f: StoreFigures) => Labelled[]) =>
    new Gauge({
      name,
      help,
      labelNames,
      registers: [registry],
      collect() {
        this.reset();
        if (current) for (const { labels, value } of pick(current)) this.set(labels, value);
      },
    });
  if (source.figures) {
    storeGauge(
      'otpilot_assistance_pending',
      'Code requests waiting for a code or an approval, per bank and type',
      ['bank', 'type'],
      (f) => f.pendingRequests,
    );
    storeGauge(
      'otpilot_code_handoff_seconds',
      'Time from a code request opening to its code being accepted, for requests fulfilled in the last hour, per bank (quantile 1 is the slowest)',
      ['bank', 'quantile'],
      (f) => f.handoffSeconds,
    );
    storeGauge(
      'otpilot_codes_last_hour',
      'Codes accepted in the last hour, per bank and source',
      ['bank', 'source'],
      (f) => f.codes,
    );
    storeGauge(
      'otpilot_logins_last_hour',
      'Logins ended in the last hour, per bank and outcome (succeeded, cancelled or the failure category)',
      ['bank', 'outcome'],
      (f) => f.logins,
    );
    storeGauge(
      'otpilot_webhook_deliveries_failing',
      'Webhook deliveries whose last attempt failed: status="failed" are retrying now, status="dead" were given up in the last hour',
      ['status'],
      (f) => f.deliveries,
    );
    storeGauge(
      'otpilot_webhook_endpoints',
      'Webhook endpoints disabled (state="disabled") and enabled but failing now (state="failing")',
      ['state'],
      (f) => f.endpoints,
    );
  }
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
  const { figures } = source;
  return async () => {
    if (figures) {
      // While the store cannot answer, the store gauges are left out (otpilot_db_up says why).
      current = source.databaseUp() ? await figures().catch(() => null) : null;
    }
    return { contentType: registry.contentType, text: await registry.metrics() };
  };
}
