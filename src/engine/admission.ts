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
 * Measures the event loop's lag by how late a 100 ms timer fires (the worst of the last second), so a
 * claim pass can see that the process is already behind on the work it holds.
 */
export function makeSaturation(options: SaturationOptions): Saturation {
  const samples: number[] = [];
  let timer: NodeJS.Timeout | null = null;
  let last = 0;
  /** When a sample last passed the limit (`performance.now()`). */
  let lastSaturated = Number.NEGATIVE_INFINITY;
  const lag = () => (samples.length === 0 ? 0 : Math.max(...samples));
  return {
    reason() {
      // A timer starved for longer than the window has not even sampled: count the wait so far.
      const current = Math.max(lag(), timer ? performance.now() - last - SAMPLE_MS : 0);
      if (current > options.lagMs) {
        lastSaturated = performance.now();
        return 'loop_lag';
      }
      if (options.backlog() > options.poolSize) return 'db_backlog';
      return null;
    },
    lag,
    saturatedSince(since) {
      if (timer && performance.now() - last - SAMPLE_MS > options.lagMs) return true;
      return lastSaturated >= since;
    },
    start() {
      if (timer) return;
      last = performance.now();
      timer = setInterval(() => {
        const now = performance.now();
        const late = Math.max(0, now - last - SAMPLE_MS);
        if (late > options.lagMs) lastSaturated = now;
        samples.push(late);
        if (samples.length > WINDOW) samples.shift();
        last = now;
      }, SAMPLE_MS);
      timer.unref();
    },
    stop() {
      if (timer) clearInterval(timer);
      timer = null;
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
