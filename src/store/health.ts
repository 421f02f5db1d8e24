import { sql } from 'kysely';
import type { Logger } from 'pino';
import type { Db } from './db.js';

/** Whether the database answers, as seen by a probe every `intervalMs`. */
export interface DatabaseHealth {
  up(): boolean;
  /** Probes now and returns the new state. */
  check(): Promise<boolean>;
  start(): void;
  stop(): void;
}

/**
 * Probes the database with `select 1` (default every second): workers stop claiming while it is down
 * and `/health` answers 503. Transitions are logged once each, not every probe.
 */
export function makeDatabaseHealth(options: { db: Db; log: Logger; intervalMs: number }): DatabaseHealth {
  let up = true;
  let timer: NodeJS.Timeout | null = null;
  let probing: Promise<boolean> | null = null;

  async function probe(): Promise<boolean> {
    let ok: boolean;
    try {
      await sql`select 1`.execute(options.db);
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
    check,
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
