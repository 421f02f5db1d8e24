import type { Bus } from './bus.js';
import { topics as TOPICS } from './topics.js';

/**
 * The longest a waiter goes without its fallback check while nothing rings, ms. A waiter's check
 * starts `pollMs` after it begins waiting and doubles up to this: a wake-up lost without the bus
 * noticing (a process that died between its commit and its NOTIFY) is still caught within half a
 * minute.
 */
export const FALLBACK_MAX_MS = 30_000;

/** Keys per fallback query: under SQLite's oldest bound-parameter limit (999), with room. */
const CHECK_CHUNK = 500;

/**
 * A batched fallback check of one kind of wait: of these keys, the ones whose waiters should read
 * again now (what they wait for happened, or their row vanished). One query for all of them.
 */
export type BatchCheck = (keys: readonly string[]) => Promise<Iterable<string>>;

/** Where the registry's one timer comes from: real time by default, a hand-driven one in tests. */
export interface WaitTimer {
  /** Monotonic ms. */
  now(): number;
  set(fire: () => void, ms: number): unknown;
  clear(handle: unknown): void;
}

/** `performance.now()` and an unref'd `setTimeout`: a pending check never keeps a process alive. */
export const realTimer: WaitTimer = {
  now: () => performance.now(),
  set: (fire, ms) => setTimeout(fire, ms).unref(),
  clear: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

/** A registered wait: resolves `true` when rung (its topic, `resync`, or its check found it ready), `false` at its timeout or abort. */
export interface Bell {
  promise: Promise<boolean>;
  cancel(): void;
}

/** What the registry holds and has done (tests, metrics). */
export interface WaitersStats {
  /** Waits registered now. */
  waiting: number;
  /** Fallback queries run so far (each covers up to 500 keys of one kind). */
  checks: number;
  /** Keys those queries looked at, in all. */
  keysChecked: number;
  /** Waits a fallback check woke (their ring was lost, or never sent). */
  wokenByCheck: number;
}

/**
 * The waits of one process, with one fallback for all of them. Each wait rings on its bus topics
 * (the normal path) and at its timeout; instead of a timer and a re-read per waiter, the registry
 * keeps one timer and, when waits are due for their fallback, runs one query per kind for all of
 * them (`checks[kind]`) and wakes only those whose row changed. A wait that is not woken backs off
 * (doubling up to `FALLBACK_MAX_MS`) and costs nothing meanwhile: no timer, no read, no allocation.
 */
export interface Waiters<K extends string = string> {
  /**
   * Registers at once (nothing published after this call is missed). `fallbackMs`: when its first
   * fallback check is due; `timeoutMs`: when it resolves `false` (both from now, ms).
   */
  waiter(wait: {
    kind: K;
    key: string;
    topic: string;
    fallbackMs: number;
    timeoutMs: number;
    signal?: AbortSignal;
  }): Bell;
  stats(): WaitersStats;
  /**
   * Stops the timer and the fallback: waits end only by a ring or their abort signal from then on
   * (the engine stops its logins first). Not settled here, so no wait re-registers in a loop.
   */
  stop(): void;
}

interface Entry {
  kind: string;
  key: string;
  /** Next fallback check, on the registry's timer. */
  checkAt: number;
  intervalMs: number;
  dueAt: number;
  settle(value: boolean): void;
}

export function makeWaiters<K extends string>(options: {
  bus: Bus;
  checks: Record<K, BatchCheck>;
  /**
   * Waits whose checks fall due within this of each other share one query, ms (`OTPILOT_POLL_MS`):
   * a check runs at most that much early, never late.
   */
  batchMs: number;
  timer?: WaitTimer;
  /** Called when a fallback query fails (the waits stay and are checked again after their back-off). */
  onError?: (error: unknown) => void;
}): Waiters<K> {
  const timer = options.timer ?? realTimer;
  const entries = new Set<Entry>();
  const stats = { checks: 0, keysChecked: 0, wokenByCheck: 0 };
  let handle: unknown = null;
  let armedAt = Number.POSITIVE_INFINITY;
  let checking = false;
  let stopped = false;

  // One subscription for `resync` (the bus may have dropped rings) instead of one per waiter.
  const unsubscribeResync = options.bus.subscribe(TOPICS.resync, () => {
    for (const entry of [...entries]) entry.settle(true);
  });

  function arm(at: number): void {
    if (stopped || at >= armedAt) return;
    if (handle !== null) timer.clear(handle);
    armedAt = at;
    // setTimeout fires at once past 2^31 - 1 ms; such a wait is re-armed when that tick comes.
    handle = timer.set(() => void tick(), Math.min(Math.max(0, at - timer.now()), 2 ** 31 - 1));
  }

  /**
   * Re-arms for the earliest check or timeout among the waits (one pass, once per tick). While a
   * check runs, only timeouts count: the waits being checked are re-armed when it ends.
   */
  function rearm(): void {
    let next = Number.POSITIVE_INFINITY;
    for (const entry of entries) next = Math.min(next, checking ? entry.dueAt : Math.min(entry.checkAt, entry.dueAt));
    if (next < Number.POSITIVE_INFINITY) arm(next);
  }

  async function tick(): Promise<void> {
    handle = null;
    armedAt = Number.POSITIVE_INFINITY;
    if (stopped) return;
    const now = timer.now();
    const due = new Map<string, Map<string, Entry[]>>();
    // Settling deletes the entry: safe while iterating a Set.
    for (const entry of entries) {
      if (entry.dueAt <= now) {
        entry.settle(false);
        continue;
      }
      if (checking || entry.checkAt > now + options.batchMs) continue;
      let byKey = due.get(entry.kind);
      if (!byKey) {
        byKey = new Map();
        due.set(entry.kind, byKey);
      }
      const same = byKey.get(entry.key);
      if (same) same.push(entry);
      else byKey.set(entry.key, [entry]);
    }
    if (due.size === 0) return rearm();
    checking = true;
    rearm();
    try {
      for (const [kind, byKey] of due) await check(kind as K, byKey);
    } finally {
      checking = false;
    }
    rearm();
  }

  async function check(kind: K, byKey: Map<string, Entry[]>): Promise<void> {
    const keys = [...byKey.keys()];
    for (let start = 0; start < keys.length; start += CHECK_CHUNK) {
      const chunk = keys.slice(start, start + CHECK_CHUNK);
      stats.checks++;
      stats.keysChecked += chunk.length;
      let ready: Set<string>;
      try {
        ready = new Set(await options.checks[kind](chunk));
      } catch (error) {
        options.onError?.(error);
        ready = new Set();
      }
      const now = timer.now();
      for (const key of chunk) {
        for (const entry of byKey.get(key) ?? []) {
          if (!entries.has(entry)) continue;
          if (ready.has(key)) {
            stats.wokenByCheck++;
            entry.settle(true);
          } else {
            entry.intervalMs = Math.min(entry.intervalMs * 2, Math.max(entry.intervalMs, FALLBACK_MAX_MS));
            entry.checkAt = now + jittered(entry.intervalMs);
          }
        }
      }
    }
  }

  return {
    waiter({ kind, key, topic, fallbackMs, timeoutMs, signal }) {
      let settle: (value: boolean) => void = () => {};
      const promise = new Promise<boolean>((resolve) => {
        settle = resolve;
      });
      const now = timer.now();
      const entry: Entry = {
        kind,
        key,
        intervalMs: fallbackMs,
        checkAt: now + jittered(fallbackMs),
        dueAt: now + Math.max(0, timeoutMs),
        settle: (value) => {
          if (!entries.delete(entry)) return;
          unsubscribe();
          signal?.removeEventListener('abort', onAbort);
          settle(value);
        },
      };
      const onAbort = () => entry.settle(false);
      entries.add(entry);
      const unsubscribe = options.bus.subscribe(topic, () => entry.settle(true));
      if (signal?.aborted) entry.settle(false);
      else {
        signal?.addEventListener('abort', onAbort, { once: true });
        arm(Math.min(entry.checkAt, entry.dueAt));
      }
      return { promise, cancel: () => entry.settle(false) };
    },
    stats: () => ({ waiting: entries.size, ...stats }),
    stop() {
      stopped = true;
      if (handle !== null) timer.clear(handle);
      handle = null;
      unsubscribeResync();
    },
  };
}

/** ±25 %, so waits that began together (a burst of logins) spread their checks over time. */
function jittered(ms: number): number {
  return ms * (0.75 + Math.random() * 0.5);
}
