import type { Bus } from './bus.js';
import { topics } from './topics.js';

/**
 * The longest a waiter goes without re-reading the store while nothing rings, ms. The fallback
 * re-read starts at `pollMs` and doubles up to this: thousands of logins waiting for codes cost
 * next to nothing, and a wake-up lost without the bus noticing (a process that died between its
 * commit and its NOTIFY) is still caught within half a minute.
 */
export const FALLBACK_MAX_MS = 30_000;

/** Result of `waitFor`: the last value read, and whether `done` said so (else the time ran out or the wait was aborted). */
export interface Waited<T> {
  value: T;
  done: boolean;
}

/**
 * The one way the service waits for a change. The store is the truth and the bus a doorbell: the
 * waiter registers on `topic` before each read (so a change committed between the read and the
 * wait still rings), re-reads on every ring, and re-reads without one after `pollMs`, then after
 * twice that, up to `FALLBACK_MAX_MS`, in case a ring was lost. A bus that knows it may have
 * dropped rings (PostgreSQL's LISTEN connection came back) rings `topics.resync`, which every
 * waiter hears. Returns when `done(value)` holds, when `until` (on `clock`) passes, or when
 * `signal` aborts. `clock` is injected: domain deadlines use the service clock, bounds on how long
 * an HTTP call is held use a monotonic one.
 */
export async function waitFor<T>(options: {
  bus: Bus;
  topic: string;
  read: () => Promise<T>;
  done: (value: T) => boolean;
  /** When to stop waiting, on `clock` (ms). */
  until: number;
  clock: () => number;
  /** First fallback re-read interval, ms (it then doubles up to `FALLBACK_MAX_MS`). */
  pollMs: number;
  signal?: AbortSignal;
}): Promise<Waited<T>> {
  let interval = options.pollMs;
  for (;;) {
    const remaining = options.until - options.clock();
    // Jittered so waits that began together (a burst of logins) do not re-read together.
    const timeout = Math.max(0, Math.min(remaining, interval * (0.75 + Math.random() * 0.5)));
    const bell = options.bus.waiter([options.topic, topics.resync], timeout, options.signal);
    const value = await options.read();
    if (options.done(value)) {
      bell.cancel();
      return { value, done: true };
    }
    if (remaining <= 0 || options.signal?.aborted) {
      bell.cancel();
      return { value, done: false };
    }
    const rang = await bell.promise;
    if (!rang) interval = Math.min(interval * 2, Math.max(options.pollMs, FALLBACK_MAX_MS));
  }
}
