import { type EventLoopUtilization, performance } from 'node:perf_hooks';
import type { SessionOutcome } from '../sessions/transitions.js';

/** When this process should take no more work: its event loop is late, or its database work is queued. */
export interface SaturationOptions {
  /** The loop running this late (the worst sample of the last second) is saturated, ms [OTPILOT_SATURATION_LAG_MS]. */
  lagMs: number;
  /** Queries waiting for a database connection in this process (`Store.backlog`). */
  backlog(): number;
  /** Connections in the pool: more queries than this waiting is saturated [OTPILOT_PG_POOL_SIZE]. */
  poolSize: number;
}

export interface Saturation {
  /** Why the process should claim nothing now, or null when it may. */
  reason(): 'loop_lag' | 'db_backlog' | null;
  /** The worst event-loop lag of the last second, ms. */
  lag(): number;
  /** Whether the loop lagged past the limit at any time since `since` (a `performance.now()` time). */
  saturatedSince(since: number): boolean;
  start(): void;
  stop(): void;
}

/** A lag sample every this many ms; the last `WINDOW` samples are kept. */
const SAMPLE_MS = 100;
const WINDOW = 10;
/**
 * A late loop is ours to fix only while the loop is also busy: on a machine shared with other
 * processes, an idle process's timers run late too (the CPU is elsewhere), and holding its claims
 * back would only slow the burst down. Busy: at least this share of the last second in callbacks.
 */
const BUSY_SHARE = 0.8;

/**
 * Measures the event loop's lag by how late a 100 ms timer fires (the worst of the last second) and
 * how busy the loop was over that second, so a claim pass can see that the process is already behind
 * on the work it holds (late and busy; late alone is a machine busy with other processes).
 */
export function makeSaturation(options: SaturationOptions): Saturation {
  const samples: number[] = [];
  let timer: NodeJS.Timeout | null = null;
  let last = 0;
  /** Event-loop utilization snapshots, one per sample (the oldest starts the window). */
  const busy: EventLoopUtilization[] = [];
  /** When a sample last passed the limit (`performance.now()`). */
  let lastSaturated = Number.NEGATIVE_INFINITY;
  const lag = () => (samples.length === 0 ? 0 : Math.max(...samples));
  return {
    reason() {
      // A timer starved for longer than the window has not even sampled: count the wait so far.
      const current = Math.max(lag(), timer ? performance.now() - last - SAMPLE_MS : 0);
      const since = busy[0];
      const share = since ? performance.eventLoopUtilization(since).utilization : 1;
      if (current > options.lagMs && share >= BUSY_SHARE) {
        lastSaturated = performance.now();
        return 'loop_lag';
      }
      if (options.backlog() > options.poolSize) return 'db_backlog';
      return null;
    },
    lag,
    saturatedSince(since) {
      // The loop may be late right now, before the next sample notes it.
      return lastSaturated >= since || this.reason() === 'loop_lag';
    },
    start() {
      if (timer) return;
      last = performance.now();
      busy.push(performance.eventLoopUtilization());
      timer = setInterval(() => {
        const now = performance.now();
        const late = Math.max(0, now - last - SAMPLE_MS);
        const from = busy[0];
        if (late > options.lagMs && (!from || performance.eventLoopUtilization(from).utilization >= BUSY_SHARE))
          lastSaturated = now;
        samples.push(late);
        if (samples.length > WINDOW) samples.shift();
        busy.push(performance.eventLoopUtilization());
        if (busy.length > WINDOW) busy.shift();
        last = now;
      }, SAMPLE_MS);
      timer.unref();
    },
    stop() {
      if (timer) clearInterval(timer);
      timer = null;
      busy.length = 0;
      samples.length = 0;
    },
  };
}

/**
 * A bank call that failed (`bank_unavailable`) or outlived its limit (`connector_timeout`) while this
 * process was saturated says nothing about the bank: it becomes `overloaded`, which does not count
 * toward a block and runs a scheduled account again at once. Other outcomes pass unchanged.
 */
export function blameOverload(outcome: SessionOutcome, saturated: boolean): SessionOutcome {
  if (!saturated || outcome.state !== 'failed') return outcome;
  if (outcome.category !== 'bank_unavailable' && outcome.category !== 'connector_timeout') return outcome;
  return {
    state: 'failed',
    category: 'overloaded',
    message: `this worker was overloaded during the login (${outcome.category}: ${outcome.message})`.slice(0, 500),
  };
}
