import { ENGINE_STOP } from '../connectors/sdk.js';

/** The connector calls the watchdog times. */
export type ConnectorCall = 'login' | 'tryCode' | 'check' | 'data' | 'close' | 'keepAlive';

/** A connector call (or the whole session) outlived its limit; the runner ends the session `connector_timeout`. */
export class ConnectorTimeout extends Error {
  readonly [ENGINE_STOP] = true;
  readonly call: ConnectorCall | 'session';
  constructor(call: ConnectorCall | 'session', limitMs: number) {
    super(
      call === 'session'
        ? `the session ran longer than its limit (${Math.round(limitMs / 1000)} s)`
        : `the connector's ${call} did not answer within ${Math.round(limitMs / 1000)} s`,
    );
    this.name = 'ConnectorTimeout';
    this.call = call;
  }
}

/** The request's deadline passed while the bank judged a code. */
export class DeadlinePassed extends Error {
  readonly [ENGINE_STOP] = true;
  constructor() {
    super('the bank did not judge the code before the request’s deadline');
    this.name = 'DeadlinePassed';
  }
}

export interface WatchdogLimits {
  /** Longest a whole session may run, waits included, ms [OTPILOT_MAX_SESSION_SECONDS]. */
  sessionMs: number;
  /** Longest one connector call may take, time spent waiting for a person excluded, ms [OTPILOT_CONNECTOR_CALL_SECONDS]. */
  callMs: number;
}

export interface Watchdog {
  /**
   * Runs one connector call under its limit (`limitMs`, default the call limit; `onLimit` names the
   * error when it passes) and the session's.
   * A call that outlives either is abandoned: the session's signal aborts (a well-behaved connector
   * stops) and the call's promise is no longer awaited (a connector that ignores its signal cannot
   * hold the worker slot or the lease), so the runner moves on at once.
   */
  call<T>(
    what: ConnectorCall,
    run: () => Promise<T>,
    options?: { limitMs?: number; onLimit?: () => Error },
  ): Promise<T>;
  /** Runs `wait` (a wait for a person) with the running calls' clocks stopped. */
  paused<T>(wait: () => Promise<T>): Promise<T>;
  /** Stops the session's timer. */
  dispose(): void;
}

interface Running {
  left: number;
  since: number;
  timer: NodeJS.Timeout | null;
  fire: () => void;
}

/**
 * One per session. `abort(error)` stops the session (the runner aborts its controller with it); it
 * is called once, by whichever limit passes first.
 */
export function makeWatchdog(
  limits: WatchdogLimits,
  abort: (error: Error) => void,
  /** The session's own stop (cancel, shutdown, lost lease): a running call is abandoned at once too. */
  stopped?: AbortSignal,
): Watchdog {
  let expired: Error | null = null;
  const expiredWaiters = new Set<(error: Error) => void>();
  const expire = (error: Error) => {
    if (expired) return;
    expired = error;
    abort(error);
    for (const reject of expiredWaiters) reject(error);
  };
  const sessionTimer = setTimeout(() => expire(new ConnectorTimeout('session', limits.sessionMs)), limits.sessionMs);
  sessionTimer.unref();
  const running = new Set<Running>();
  let pauses = 0;

  const arm = (entry: Running) => {
    entry.since = performance.now();
    entry.timer = setTimeout(entry.fire, Math.max(0, entry.left));
  };

  return {
    async call(what, run, options = {}) {
      if (expired) throw expired;
      const limitMs = Math.max(0, options.limitMs ?? limits.callMs);
      let onLimit: (error: Error) => void = () => {};
      const limited = new Promise<never>((_, reject) => {
        onLimit = reject;
      });
      const entry: Running = {
        left: limitMs,
        since: 0,
        timer: null,
        fire: () => expire(options.onLimit?.() ?? new ConnectorTimeout(what, limitMs)),
      };
      // A call started during a wait for a person (tryCode) runs on its own clock at once.
      arm(entry);
      running.add(entry);
      expiredWaiters.add(onLimit);
      const onStop = () => onLimit(stopped?.reason instanceof Error ? stopped.reason : new Error('session stopped'));
      stopped?.addEventListener('abort', onStop, { once: true });
      try {
        if (stopped?.aborted) onStop();
        return await Promise.race([run(), limited]);
      } finally {
        if (entry.timer) clearTimeout(entry.timer);
        running.delete(entry);
        expiredWaiters.delete(onLimit);
        stopped?.removeEventListener('abort', onStop);
      }
    },
    async paused(wait) {
      const stopped = pauses === 0 ? [...running] : [];
      pauses++;
      for (const entry of stopped) {
        if (entry.timer) clearTimeout(entry.timer);
        entry.timer = null;
        entry.left -= performance.now() - entry.since;
      }
      try {
        return await wait();
      } finally {
        pauses--;
        for (const entry of stopped) if (running.has(entry)) arm(entry);
      }
    },
    dispose() {
      clearTimeout(sessionTimer);
    },
  };
}
