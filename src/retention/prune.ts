import type { Logger } from 'pino';
import { timeOfId } from '../core/ids.js';
import type { Clock } from '../core/time.js';
import { singleFlight } from '../events/single-flight.js';
import type { Db } from '../store/db.js';

const DAY_MS = 86_400_000;
/** Rows deleted per statement: short transactions that never hold the tables for long. */
const BATCH = 1000;
/**
 * The webhook fan-out's position in the outbox (written by webhooks/delivery.ts): events past it
 * are not handed to webhooks yet and are never pruned.
 */
const FAN_OUT_CURSOR = 'webhooks_dispatched_seq';
/** Events pruned so far were all older than this (epoch ms): a stream resuming from an unknown id older than it answers 410. */
export const EVENTS_PRUNED_BEFORE = 'events_pruned_before';

/** How long each kind of row is kept, in days; 0 keeps it forever. */
export interface RetentionPolicy {
  /** Outbox events (the SSE stream's history, webhook payloads) [30]. */
  eventsDays: number;
  /** Finished webhook deliveries (succeeded or dead) and their attempts, counted from the last attempt [30]. */
  deliveriesDays: number;
  /** Data API results, counted from when they expired (they answer `GONE` meanwhile) [30]. */
  resultsDays: number;
}

/** Rows deleted by one pass, per table. */
export interface PruneCounts {
  events: number;
  deliveries: number;
  delivery_attempts: number;
  results: number;
  /** Rate-limit windows that ended over an hour ago. */
  rate_limits: number;
}

/** Rate-limit windows are a minute long; an hour's worth is kept for looking into an incident. */
const RATE_LIMIT_KEEP_MS = 3_600_000;

export interface Pruner {
  /** One full pass; returns what it deleted. */
  pruneOnce(): Promise<PruneCounts>;
  start(): void;
  /** Stops the timer and waits for a pass in progress. */
  stop(): Promise<void>;
}

/** Deletes in batches until a batch comes back short; returns the total. */
async function inBatches(remove: () => Promise<number>): Promise<number> {
  let total = 0;
  for (;;) {
    const n = await remove();
    total += n;
    if (n < BATCH) return total;
  }
}

/**
 * The retention job: deletes finished webhook deliveries with their attempts, events nothing needs
 * any more (older than the window, already fanned out to webhooks, no open delivery reading them) and
 * long-expired data API results. Safe to run in several processes at once: each statement deletes
 * what its own condition selects, whoever else deleted before.
 */
export function makePruner(deps: {
  db: Db;
  clock: Clock;
  log: Logger;
  policy: RetentionPolicy;
  /** Between passes, ms; the first pass runs at start. */
  intervalMs: number;
}): Pruner {
  const { db, policy } = deps;
  let timer: NodeJS.Timeout | null = null;

  async function pruneDeliveries(now: number): Promise<{ deliveries: number; attempts: number }> {
    if (policy.deliveriesDays === 0) return { deliveries: 0, attempts: 0 };
    const cutoff = now - policy.deliveriesDays * DAY_MS;
    let attempts = 0;
    const deliveries = await inBatches(async () => {
      const ids = (
        await db
          .selectFrom('deliveries')
          .select('id')
          .where('status', 'in', ['succeeded', 'dead'])
          .where('updated_at', '<', cutoff)
          .limit(BATCH)
          .execute()
      ).map((row) => row.id);
      if (ids.length === 0) return 0;
      await db.transaction().execute(async (trx) => {
        const a = await trx.deleteFrom('delivery_attempts').where('delivery_id', 'in', ids).executeTakeFirst();
        attempts += Number(a.numDeletedRows);
        // The status is checked again: a delivery retried meanwhile is open and stays.
        await trx
          .deleteFrom('deliveries')
          .where('id', 'in', ids)
          .where('status', 'in', ['succeeded', 'dead'])
          .execute();
      });
      return ids.length;
    });
    return { deliveries, attempts };
  }

  async function pruneEvents(now: number): Promise<number> {
    if (policy.eventsDays === 0) return 0;
    const cutoff = now - policy.eventsDays * DAY_MS;
    const cursorRow = await db
      .selectFrom('settings')
      .select('value')
      .where('key', '=', FAN_OUT_CURSOR)
      .executeTakeFirst();
    // Until the fan-out has run once, every event may still be owed to a webhook.
    const fannedOut = cursorRow ? Number(cursorRow.value) : 0;
    return inBatches(async () => {
      const batch = await db
        .selectFrom('events as e')
        .select(['e.seq', 'e.occurred_at'])
        .where('e.occurred_at', '<', cutoff)
        .where('e.seq', '<=', fannedOut)
        .where(({ not, exists, selectFrom }) =>
          not(
            exists(
              selectFrom('deliveries as d')
                .select('d.id')
                .whereRef('d.event_id', '=', 'e.id')
                .where('d.status', 'in', ['pending', 'failed']),
            ),
          ),
        )
        .orderBy('e.seq')
        .limit(BATCH)
        .execute();
      if (batch.length === 0) return 0;
      // Recorded before deleting, so a stream that resumes from one of these gets the 410, never a 400:
      // the newest pruned event's time, so ids older than anything ever pruned stay "unknown".
      const newest = Math.max(...batch.map((row) => Number(row.occurred_at))) + 1;
      const previous = await db
        .selectFrom('settings')
        .select('value')
        .where('key', '=', EVENTS_PRUNED_BEFORE)
        .executeTakeFirst();
      if (!previous || Number(previous.value) < newest)
        await db
          .insertInto('settings')
          .values({ key: EVENTS_PRUNED_BEFORE, value: String(newest) })
          .onConflict((oc) => oc.column('key').doUpdateSet({ value: String(newest) }))
          .execute();
      const result = await db
        .deleteFrom('events')
        .where(
          'seq',
          'in',
          batch.map((row) => Number(row.seq)),
        )
        .executeTakeFirst();
      return Number(result.numDeletedRows);
    });
  }

  async function pruneResults(now: number): Promise<number> {
    if (policy.resultsDays === 0) return 0;
    const cutoff = now - policy.resultsDays * DAY_MS;
    return inBatches(async () => {
      const result = await db
        .deleteFrom('results')
        .where('id', 'in', (eb) => eb.selectFrom('results').select('id').where('expires_at', '<', cutoff).limit(BATCH))
        .executeTakeFirst();
      return Number(result.numDeletedRows);
    });
  }

  async function pass(): Promise<PruneCounts> {
    const now = deps.clock();
    // Deliveries first: the events they held become prunable in the same pass.
    const { deliveries, attempts } = await pruneDeliveries(now);
    const events = await pruneEvents(now);
    const results = await pruneResults(now);
    const limits = await db
      .deleteFrom('rate_limits')
      .where('window_start', '<', now - RATE_LIMIT_KEEP_MS)
      .executeTakeFirst();
    const counts = {
      events,
      deliveries,
      delivery_attempts: attempts,
      results,
      rate_limits: Number(limits.numDeletedRows),
    };
    if (events + deliveries + attempts + results > 0) deps.log.info({ deleted: counts }, 'retention: old rows pruned');
    return counts;
  }

  // A pass asked for while one runs shares it.
  const pruneOnce = singleFlight(pass, { whenBusy: 'skip' });
  let running: Promise<PruneCounts> | null = null;

  return {
    pruneOnce,
    start() {
      const tick = () => {
        running = pruneOnce();
        running.then(
          () => {},
          (error: unknown) => deps.log.warn({ err: error }, 'retention: pruning failed; retrying at the next pass'),
        );
      };
      tick();
      timer = setInterval(tick, deps.intervalMs);
      timer.unref();
    },
    async stop() {
      if (timer) clearInterval(timer);
      timer = null;
      await running?.catch(() => {});
    },
  };
}

/** Whether event `id` is missing because the retention job removed it (it is older than what was pruned). */
export async function wasPruned(db: Db, id: string): Promise<boolean> {
  const made = timeOfId('evt', id);
  if (made === null) return false;
  const row = await db
    .selectFrom('settings')
    .select('value')
    .where('key', '=', EVENTS_PRUNED_BEFORE)
    .executeTakeFirst();
  return row !== undefined && made < Number(row.value);
}
