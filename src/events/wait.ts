import type { Bus } from './bus.js';
import { topics } from './topics.js';
import { FALLBACK_MAX_MS, type Waiters } from './waiters.js';

export { FALLBACK_MAX_MS } from './waiters.js';

/** Result of `waitFor`: the last value read, and whether `done` said so (else the time ran out or the wait was aborted). */
export interface Waited<T> {
  value: T;
  done: boolean;
}

/**
 * The one way the service waits for a change. The store is the truth and the bus a doorbell: the
 * waiter registers on `topic` before each read (so a change committed between the read and the
 * wait still rings), re-reads on every ring, and, in case a ring was lost, falls back to the store
 * after `pollMs`, then after twice that, up to `FALLBACK_MAX_MS`. With `batch`, that fallback is the
 * process's one batched check (`Waiters`: one query for every wait of its kind, waking only those
 * whose row changed; no timer or read per waiter); without, the waiter re-reads on its own timer (for
 * short waits that hold an HTTP call). A bus that knows it may have dropped rings (PostgreSQL's LISTEN
 * connection came back) rings `topics.resync`, which every waiter hears. Returns when `done(value)`
 * holds, when `until` (on `clock`) passes, or when `signal` aborts. `clock` is injected: domain
 * deadlines use the service clock, bounds on how long an HTTP call is held use a monotonic one.
 */
export async function waitFor<T, K extends string = string>(options: {
  bus: Bus;
  topic: string;
  read: () => Promise<T>;
  done: (value: T) => boolean;
  /** When to stop waiting, on `clock` (ms). */
  until: number;
  clock: () => number;
  /** First fallback interval, ms (it then doubles up to `FALLBACK_MAX_MS`). */
  pollMs: number;
  signal?: AbortSignal;
  /** The batched fallback: the process's registry, this wait's kind (its check) and key (its row). */
  batch?: { waiters: Waiters<K>; kind: K; key: string };
}): Promise<Waited<T>> {
  const { batch, signal } = options;
  let interval = options.pollMs;
  for (;;) {
    const remaining = options.until - options.clock();
    const bell = batch
      ? batch.waiters.waiter({
          kind: batch.kind,
          key: batch.key,
          topic: options.topic,
          fallbackMs: options.pollMs,
          timeoutMs: Math.max(0, remaining),
          ...(signal ? { signal } : {}),
        })
      : options.bus.waiter(
          [options.topic, topics.resync],
          // Jittered so waits that began together (a burst of logins) do not re-read together.
          Math.max(0, Math.min(remaining, interval * (0.75 + Math.random() * 0.5))),
          signal,
        );
    const value = await options.read();
    if (options.done(value)) {
      bell.cancel();
      return { value, done: true };
    }
    if (remaining <= 0 || signal?.aborted) {
      bell.cancel();
      return { value, done: false };
    }
    const rang = await bell.promise;
    if (!rang) interval = Math.min(interval * 2, Math.max(options.pollMs, FALLBACK_MAX_MS));
  }
}
