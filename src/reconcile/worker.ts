import type { Logger } from 'pino';
import type { ErrorDetail } from '../core/errors.js';
import type { Clock } from '../core/time.js';
import type { Bus } from '../events/bus.js';
import type { Transact } from '../events/outbox.js';
import type { Db } from '../store/db.js';
import { isStorageUnavailable, onceMoreIfDuplicate } from '../store/errors.js';
import { duplicateIds, type NewPayment, parsePayment } from './input.js';
import type { Matcher } from './matcher.js';
import { OPEN_STATES } from './repo.js';
import type { SourceFetcher } from './source.js';

/** What one poll of a pull source did. */
export interface PollOutcome {
  created: number;
  cancelled: number;
  unchanged: number;
  error: string | null;
}

const INBOX_BATCH = 100;

/** What the reconciler needs; `pollMs` is how often it looks without a wake-up. */
export interface WorkerDeps {
  db: Db;
  transact: Transact;
  bus: Bus;
  clock: Clock;
  log: Logger;
  pollMs: number;
  fetcher: SourceFetcher;
}

/**
 * The background reconciler of a worker process: queued incoming movements (matched or forwarded),
 * expiries, and pull sources that are due. Wakes on the `reconcile` bus topic (a scrape's commit) and
 * every `pollMs` otherwise.
 */
export function makeReconcileWorker(deps: WorkerDeps & { matcher: Matcher }) {
  const { db, transact, clock, matcher } = deps;

  /** Fetches an account's source and applies its list: new orders created, vanished open ones cancelled. */
  async function poll(accountId: string, orgId: string, url: string, signal?: AbortSignal): Promise<PollOutcome> {
    const now = clock();
    const fetched = await deps.fetcher.fetchList(url, accountId, signal);
    const record = async (error: string | null) => {
      await db
        .updateTable('reconcile_accounts')
        .set({ polled_at: now, poll_error: error })
        .where('account_id', '=', accountId)
        .execute();
    };
    if (!fetched.ok) {
      await record(fetched.error);
      return { created: 0, cancelled: 0, unchanged: 0, error: fetched.error };
    }
    const parsed: NewPayment[] = [];
    const details: ErrorDetail[] = [];
    fetched.payments.forEach((raw, index) => {
      const result = parsePayment(raw, `/payments/${index}`, now);
      if (result.ok) parsed.push({ ...result.value, account_id: accountId });
      else details.push(...result.details);
    });
    details.push(...duplicateIds(parsed, '/payments'));
    if (details.length > 0) {
      const error = `the source's list was refused: ${details
        .slice(0, 3)
        .map((d) => `${d.path} ${d.message}`)
        .join('; ')}`;
      await record(error);
      return { created: 0, cancelled: 0, unchanged: 0, error };
    }
    // The background poll and a manual one (or two processes) may apply the same list at once.
    const outcome = await onceMoreIfDuplicate(() =>
      transact(async (trx, uow) => {
        const inserted = await matcher.insertPayments(trx, uow, orgId, parsed, 'pull', (index) => `/payments/${index}`);
        if (!inserted.ok) return { created: 0, cancelled: 0, unchanged: 0, error: inserted.message };
        const listed = new Set(parsed.map((p) => p.external_id));
        const open = await trx
          .selectFrom('expected_payments')
          .select(['id', 'external_id'])
          .where('account_id', '=', accountId)
          .where('source', '=', 'pull')
          .where('state', 'in', OPEN_STATES)
          .execute();
        const vanished = open.filter((p) => !listed.has(p.external_id)).map((p) => p.id);
        for (let i = 0; i < vanished.length; i += 500) {
          const ids = vanished.slice(i, i + 500);
          await trx
            .updateTable('expected_payments')
            .set({ state: 'cancelled', cancel_reason: 'vanished_from_source', updated_at: now })
            .where('id', 'in', ids)
            .execute();
          await trx.deleteFrom('payment_candidates').where('payment_id', 'in', ids).execute();
        }
        const created = inserted.value.created.filter(Boolean).length;
        return { created, cancelled: vanished.length, unchanged: parsed.length - created, error: null };
      }),
    );
    await record(outcome.error);
    return outcome;
  }

  /**
   * Takes up to INBOX_BATCH queued movements in one transaction. Most movements need nothing (their
   * organization expects no payment, their account is not passthrough): those cost a share of one
   * delete and two lookups, so a store full of movements and no reconciliation stays cheap.
   */
  async function drainInbox(): Promise<number> {
    const queued = await db
      .selectFrom('reconcile_inbox')
      .select('movement_id')
      .orderBy('created_at')
      .limit(INBOX_BATCH)
      .execute();
    if (queued.length === 0) return 0;
    const ids = queued.map((q) => q.movement_id);
    try {
      await processQueued(ids);
    } catch (error) {
      if (isStorageUnavailable(error)) throw error;
      // One movement failing must not hold the others back: one at a time, and a movement that
      // fails alone is logged and dropped from the queue (its payment can still be resolved by hand).
      for (const id of ids) {
        try {
          await processQueued([id]);
        } catch (single) {
          if (isStorageUnavailable(single)) throw single;
          deps.log.error({ err: single, movement_id: id }, 'reconciling a movement failed; dropped from the queue');
          await db.deleteFrom('reconcile_inbox').where('movement_id', '=', id).execute();
        }
      }
    }
    return queued.length;
  }

  async function processQueued(ids: string[]): Promise<void> {
    await transact(async (trx, uow) => {
      // The delete is the claim: rows another process took first are not returned.
      const taken = await trx
        .deleteFrom('reconcile_inbox')
        .where('movement_id', 'in', ids)
        .returning('movement_id')
        .execute();
      if (taken.length === 0) return;
      const movements = await trx
        .selectFrom('movements')
        .selectAll()
        .where(
          'id',
          'in',
          taken.map((t) => t.movement_id),
        )
        .orderBy('created_at')
        .orderBy('id')
        .execute();
      // One indexed probe per organization (usually one): does it expect anything at all?
      const expecting = new Set<string>();
      for (const org of new Set(movements.map((m) => m.org_id))) {
        const open = await trx
          .selectFrom('expected_payments')
          .select('id')
          .where('org_id', '=', org)
          .where('state', '=', 'pending')
          .limit(1)
          .executeTakeFirst();
        if (open) expecting.add(org);
      }
      const passthrough = new Set(
        (
          await trx
            .selectFrom('reconcile_accounts')
            .select('account_id')
            .where('account_id', 'in', [...new Set(movements.map((m) => m.account_id))])
            .where('mode', '=', 'passthrough')
            .execute()
        ).map((r) => r.account_id),
      );
      for (const movement of movements) {
        if (passthrough.has(movement.account_id)) matcher.forward(uow, movement);
        else if (expecting.has(movement.org_id)) await matcher.processMovement(trx, uow, movement);
      }
    });
  }

  async function expire(): Promise<number> {
    const now = clock();
    const due = await db
      .selectFrom('expected_payments')
      .select('id')
      .where('state', 'in', OPEN_STATES)
      .where('expires_at', '<=', now)
      .limit(500)
      .execute();
    if (due.length === 0) return 0;
    return transact(async (trx, uow) => {
      const rows = await trx
        .updateTable('expected_payments')
        .set({ state: 'expired', updated_at: now })
        .where(
          'id',
          'in',
          due.map((d) => d.id),
        )
        .where('state', 'in', OPEN_STATES)
        .returningAll()
        .execute();
      if (rows.length > 0)
        await trx
          .deleteFrom('payment_candidates')
          .where(
            'payment_id',
            'in',
            rows.map((r) => r.id),
          )
          .execute();
      for (const row of rows) await matcher.emitView(trx, uow, row, 'payment_expired');
      return rows.length;
    });
  }

  async function pollDue(): Promise<number> {
    const now = clock();
    const due = await db.selectFrom('reconcile_accounts').selectAll().where('source_url', 'is not', null).execute();
    let polled = 0;
    for (const row of due) {
      if (row.polled_at !== null && Number(row.polled_at) + row.poll_seconds * 1000 > now) continue;
      // Claim this round: of several processes, the one whose update lands polls.
      const claim = await db
        .updateTable('reconcile_accounts')
        .set({ polled_at: now })
        .where('account_id', '=', row.account_id)
        .where((eb) => (row.polled_at === null ? eb('polled_at', 'is', null) : eb('polled_at', '=', row.polled_at)))
        .executeTakeFirst();
      if (Number(claim.numUpdatedRows) === 0 || !row.source_url) continue;
      await poll(row.account_id, row.org_id, row.source_url, stopping?.signal);
      polled++;
    }
    return polled;
  }

  let stopping: AbortController | null = null;
  let loop: Promise<void> | null = null;
  // Sources are read beside the loop: a slow one (up to 15 s) must not hold back matching.
  let polling: Promise<void> | null = null;

  function pollInBackground() {
    polling ??= pollDue()
      .then(
        () => undefined,
        (error: unknown) => deps.log.error({ err: error }, 'polling reconciliation sources failed'),
      )
      .finally(() => {
        polling = null;
      });
  }

  return {
    poll,
    start() {
      if (loop) return;
      stopping = new AbortController();
      const signal = stopping.signal;
      loop = (async () => {
        while (!signal.aborted) {
          const wait = deps.bus.waiter('reconcile', deps.pollMs, signal);
          pollInBackground();
          try {
            // A full inbox batch: go again at once.
            if ((await drainInbox()) >= INBOX_BATCH) {
              wait.cancel();
              continue;
            }
            await expire();
          } catch (error) {
            deps.log.error({ err: error }, 'reconciliation pass failed');
          }
          await wait.promise;
        }
      })();
    },
    async stop() {
      stopping?.abort();
      await loop;
      await polling;
      loop = null;
    },
  };
}
