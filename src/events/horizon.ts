import type { Db, Dialect } from '../store/db.js';
import { singleFlight } from './single-flight.js';

/**
 * How far the outbox can be read without skipping an event. PostgreSQL hands out `seq` when a row is
 * inserted, but transactions commit in any order: a reader that moved its cursor past a visible
 * `seq` 8 while `seq` 7 was still uncommitted would never see 7. The horizon is the highest `seq`
 * below which every number is visible: readers (SSE streams, webhook fan-out) never read past it.
 * A number that stays missing for `gapTimeoutMs` belonged to a transaction that rolled back (or
 * to a sequence jump after a crash) and is passed over.
 *
 * On SQLite writers take turns, so commit order is `seq` order and there is no horizon to keep.
 */
export interface EventHorizon {
  /** The current horizon (reads what committed since the last call; calls in flight are shared). */
  limit(): Promise<number>;
}

/** Start this far below the newest event: rows that old committed long ago. */
const START_WINDOW = 1000;
const BATCH = 1000;

export const NO_HORIZON: EventHorizon = { limit: async () => Number.MAX_SAFE_INTEGER };

export function makeEventHorizon(options: {
  db: Db;
  dialect: Dialect;
  /** How long a missing `seq` is waited for before it is passed over, ms [10000]. */
  gapTimeoutMs?: number;
}): EventHorizon {
  if (options.dialect === 'sqlite') return NO_HORIZON;
  const { db } = options;
  const gapTimeoutMs = options.gapTimeoutMs ?? 10_000;
  let horizon: number | null = null;
  /** The missing number being waited for, and since when (monotonic ms: test clocks do not move it). */
  let gap: { seq: number; since: number } | null = null;

  async function advance(): Promise<number> {
    let h = horizon;
    if (h === null) {
      const row = await db
        .selectFrom('events')
        .select((eb) => eb.fn.max('seq').as('seq'))
        .executeTakeFirst();
      h = Math.max(0, Number(row?.seq ?? 0) - START_WINDOW);
    }
    try {
      for (;;) {
        const rows: { seq: number }[] = await db
          .selectFrom('events')
          .select('seq')
          .where('seq', '>', h)
          .orderBy('seq')
          .limit(BATCH)
          .execute();
        for (const row of rows) {
          const seq = Number(row.seq);
          if (seq !== h + 1) {
            const now = performance.now();
            if (gap?.seq !== h + 1) gap = { seq: h + 1, since: now };
            if (now - gap.since < gapTimeoutMs) return h;
          }
          h = seq;
          gap = null;
        }
        if (rows.length < BATCH) return h;
      }
    } finally {
      horizon = h;
    }
  }

  // A call made while a read runs may ask about rows that read did not see: it gets one more read.
  return { limit: singleFlight(advance) };
}
