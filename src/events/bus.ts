/**
 * Wake-ups between parts of the engine and the HTTP handlers: an in-memory emitter in one process,
 * with LISTEN/NOTIFY behind the same interface on PostgreSQL (pg-bus.ts). Nothing relies on a
 * wake-up for correctness: every waiter also re-reads the store (`waitFor` in wait.ts). The topics
 * are named in topics.ts.
 */
export interface Bus {
  publish(topic: string, payload?: unknown): void;
  subscribe(topic: string, listener: (payload: unknown) => void): () => void;
  /** Hears every topic (caches that drop entries on change). */
  subscribeAll(listener: (topic: string, payload: unknown) => void): () => void;
  /**
   * Registers at once (so nothing published after this call is missed) and resolves with `true` on
   * the next publish on any of `topics`, `false` after `timeoutMs` or when `signal` aborts. Call
   * `cancel` if unused.
   */
  waiter(
    topics: string | readonly string[],
    timeoutMs: number,
    signal?: AbortSignal,
  ): { promise: Promise<boolean>; cancel(): void };
}

export function makeMemoryBus(): Bus {
  const listeners = new Map<string, Set<(payload: unknown) => void>>();
  const everything = new Set<(topic: string, payload: unknown) => void>();

  function subscribe(topic: string, listener: (payload: unknown) => void): () => void {
    let set = listeners.get(topic);
    if (!set) {
      set = new Set();
      listeners.set(topic, set);
    }
    set.add(listener);
    return () => {
      const current = listeners.get(topic);
      if (!current) return;
      current.delete(listener);
      if (current.size === 0) listeners.delete(topic);
    };
  }

  return {
    publish(topic, payload) {
      for (const listener of everything) listener(topic, payload);
      const set = listeners.get(topic);
      if (!set) return;
      for (const listener of [...set]) listener(payload);
    },
    subscribe,
    subscribeAll(listener) {
      everything.add(listener);
      return () => everything.delete(listener);
    },
    waiter(topicOrTopics, timeoutMs, signal) {
      let settle: (value: boolean) => void = () => {};
      const promise = new Promise<boolean>((resolve) => {
        settle = resolve;
      });
      let done = false;
      const finish = (value: boolean) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        for (const unsubscribe of unsubscribes) unsubscribe();
        signal?.removeEventListener('abort', onAbort);
        settle(value);
      };
      const onAbort = () => finish(false);
      const unsubscribes = (typeof topicOrTopics === 'string' ? [topicOrTopics] : topicOrTopics).map((topic) =>
        subscribe(topic, () => finish(true)),
      );
      const timer = setTimeout(() => finish(false), Math.max(0, timeoutMs));
      if (signal?.aborted) finish(false);
      else signal?.addEventListener('abort', onAbort, { once: true });
      return { promise, cancel: () => finish(false) };
    },
  };
}
