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

/** A probe that takes longer than this counts as the database being down, ms. */
const PROBE_TIMEOUT_MS = 5000;

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
          query_timeout: PROBE_TIMEOUT_MS,
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
 * Probes the database (default every second): workers stop claiming while it is down and a worker's
 * `/health` answers 503. Transitions are logged once each, not every probe.
 */
export function makeDatabaseHealth(options: {
  probe(): Promise<void>;
  log: Logger;
  intervalMs: number;
}): DatabaseHealth {
  let up = true;
  let timer: NodeJS.Timeout | null = null;
  let probing: Promise<boolean> | null = null;

  async function probe(): Promise<boolean> {
    let ok: boolean;
    try {
      await options.probe();
      ok = true;
    } catch (error) {
      ok = false;
      if (up) options.log.error({ err: error }, 'the database is unreachable');
    }
    if (ok && !up) options.log.info('the database is reachable again');
    up = ok;
    return ok;
  }

  const check = () => {
    probing ??= probe().finally(() => {
      probing = null;
    });
    return probing;
  };

  return {
    up: () => up,
    start() {
      timer ??= setInterval(() => void check(), options.intervalMs);
      timer.unref();
    },
    stop() {
      if (timer) clearInterval(timer);
      timer = null;
    },
  };
}
