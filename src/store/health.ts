import { sql } from 'kysely';
import pg from 'pg';
import type { Logger } from 'pino';
import type { Store } from './db.js';
import { discardClient } from './pg-client.js';

/** Whether the database answers, as seen by a probe every `intervalMs`. */
export interface DatabaseHealth {
  up(): boolean;
  start(): void;
  stop(): void;
}

/** Each period of this length a probe goes unanswered counts as one failure, ms. */
const PROBE_TIMEOUT_MS = 5000;

/** Failed probes in a row that mark the database down [3]. */
export const FAILURES_TO_DOWN = 3;

/**
 * `select 1` on the store. On PostgreSQL over a connection of its own: a pool whose connections are
 * all busy (a burst of work) is not a database that is down, and must not pause the workers.
 */
export function makeProbe(store: Store): { probe(): Promise<void>; close(): Promise<void> } {
  const settings = store.postgres;
  if (!settings) return { probe: async () => void (await sql`select 1`.execute(store.db)), close: async () => {} };
  let client: pg.Client | null = null;
  const drop = (which: pg.Client) => {
    if (client === which) client = null;
    void discardClient(which);
  };
  return {
    async probe() {
      if (!client) {
        const next = new pg.Client({
          ...settings.clientConfig,
          connectionTimeoutMillis: Math.min(
            settings.clientConfig.connectionTimeoutMillis ?? PROBE_TIMEOUT_MS,
            PROBE_TIMEOUT_MS,
          ),
          // Long enough for the health check to count the hang first; then the connection is replaced.
          query_timeout: PROBE_TIMEOUT_MS * FAILURES_TO_DOWN,
        });
        next.on('error', () => drop(next));
        client = next;
        try {
          await next.connect();
        } catch (error) {
          drop(next);
          throw error;
        }
      }
      const current = client;
      try {
        await current.query('select 1');
      } catch (error) {
        drop(current);
        throw error;
      }
    },
    async close() {
      if (client) drop(client);
    },
  };
}

/**
 * Probes the database every `intervalMs`: workers stop claiming while it is down, the API answers
 * 503 at once and a worker's `/health` answers 503. On a loaded machine a probe's answer can arrive
 * after its timer has fired (the timer runs first in the loop turn that reads the answer), so one
 * slow or failed probe proves nothing: the database is down only after `failuresToDown` failed
 * probes in a row, and any answer, however late, marks it up again. A probe that hangs counts as
 * one more failure for each `timeoutMs` it runs (at most one per tick, so one stalled loop turn is
 * one failure). Transitions are logged once each.
 */
export function makeDatabaseHealth(options: {
  probe(): Promise<void>;
  log: Logger;
  intervalMs: number;
  /** Each period of this length a probe runs without answering counts as a failure, ms [PROBE_TIMEOUT_MS]. */
  timeoutMs?: number;
  /** [FAILURES_TO_DOWN] */
  failuresToDown?: number;
}): DatabaseHealth {
  const timeoutMs = options.timeoutMs ?? PROBE_TIMEOUT_MS;
  const failuresToDown = options.failuresToDown ?? FAILURES_TO_DOWN;
  let up = true;
  let failures = 0;
  let timer: NodeJS.Timeout | null = null;
  let probing: { started: number; overdue: number } | null = null;

  function failed(error: unknown): void {
    failures += 1;
    if (up && failures >= failuresToDown) {
      up = false;
      options.log.error({ err: error, failures }, 'the database is unreachable');
    }
  }

  function answered(): void {
    failures = 0;
    if (!up) options.log.info('the database is reachable again');
    up = true;
  }

  function tick(): void {
    if (probing) {
      const periods = Math.floor((Date.now() - probing.started) / timeoutMs);
      if (periods > probing.overdue) {
        probing.overdue = periods;
        failed(new Error(`the database probe has not answered for ${periods * timeoutMs} ms`));
      }
      return;
    }
    const current = { started: Date.now(), overdue: 0 };
    probing = current;
    options
      .probe()
      .then(answered, failed)
      .finally(() => {
        if (probing === current) probing = null;
      });
  }

  return {
    up: () => up,
    start() {
      timer ??= setInterval(tick, options.intervalMs);
      timer.unref();
    },
    stop() {
      if (timer) clearInterval(timer);
      timer = null;
    },
  };
}
