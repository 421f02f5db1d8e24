import type { Bus } from './bus.js';

/** Result of `waitFor`: the last value read, and whether `done` said so (else the time ran out or the wait was aborted). */
export interface Waited<T> {
  value: T;
  done: boolean;
}

/**
 * The one way the service waits for a change. The store is the truth and the bus a doorbell: the
 * waiter registers on `topic` before each read (so a change committed between the read and the
 * wait still rings), re-reads on every ring, and re-reads at least every `pollMs` in case a ring was
 * lost (another process's NOTIFY dropped). Returns when `done(value)` holds, when `until` (on
 * `clock`) passes, or when `signal` aborts. `clock` is injected: domain deadlines use the service
 * clock, bounds on how long an HTTP call is held use a monotonic one.
 */
export async function waitFor<T>(options: {
  bus: Bus;
  topic: string;
  read: () => Promise<T>;
  done: (value: T) => boolean;
  /** When to stop waiting, on `clock` (ms). */
  until: number;
  clock: () => number;
  /** Fallback re-read interval, ms. */
  pollMs: number;
  signal?: AbortSignal;
}): Promise<Waited<T>> {
  for (;;) {
    const remaining = options.until - options.clock();
    const bell = options.bus.waiter(options.topic, Math.max(0, Math.min(remaining, options.pollMs)), options.signal);
    const value = await options.read();
    if (options.done(value)) {
      bell.cancel();
      return { value, done: true };
    }
    if (remaining <= 0 || options.signal?.aborted) {
      bell.cancel();
      return { value, done: false };
    }
    await bell.promise;
  }
}
