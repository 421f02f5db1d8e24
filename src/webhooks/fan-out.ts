import { type ExpressionBuilder, sql } from 'kysely';
import { newId } from '../core/ids.js';
import type { Clock } from '../core/time.js';
import type { EventHorizon } from '../events/horizon.js';
import type { Transact } from '../events/outbox.js';
import { insertRows } from '../store/bulk.js';
import type { Db } from '../store/db.js';
import { prepared, preparedWrite } from '../store/prepared.js';
import type { Database, DeliveriesTable } from '../store/schema.js';
import { destinationsFor, subscribersFrom } from './destinations.js';
import { newDelivery } from './repo.js';

const CURSOR_KEY = 'webhooks_dispatched_seq';
/** Events read per pass; a full batch means there may be more. */
export const FAN_OUT_BATCH = 500;

const DELIVERY_COLUMNS = [
  'id',
  'org_id',
  'destination',
  'endpoint_id',
  'account_key',
  'event_id',
  'event_seq',
  'status',
  'attempt',
  'next_attempt_at',
  'lease_owner',
  'lease_expires_at',
  'response_status',
  'duration_ms',
  'error',
  'payload',
  'created_at',
  'updated_at',
] as const satisfies readonly (keyof DeliveriesTable)[];

const hasReceiver = (eb: ExpressionBuilder<Database, 'account_config'>) =>
  eb.or([eb('notification_endpoint_url', 'is not', null), eb('webhook_url', 'is not', null)]);

/**
 * With no subscriber anywhere, the cursor moves to the newest event at or below the horizon, in one
 * statement that re-checks there is still no subscriber (one created meanwhile stops it, and the pass
 * then fans out as usual). Changes no row when there is a subscriber, nothing new, or no cursor yet.
 */
const catchUpUnsubscribed = preparedWrite(
  (q, p) =>
    q
      .updateTable('settings')
      .set({ value: sql<string>`cast((select max(seq) from events where seq <= ${p.upTo}) as text)` })
      .where('key', '=', CURSOR_KEY)
      .where(sql`cast(settings.value as bigint)`, '<', sql`(select max(seq) from events where seq <= ${p.upToAgain})`)
      .where((eb) => eb.not(eb.exists(eb.selectFrom('webhook_endpoints').select('id').where('enabled', '=', 1))))
      .where((eb) => eb.not(eb.exists(eb.selectFrom('account_config').select('account_id').where(hasReceiver)))),
  ['upTo', 'upToAgain'] as const,
);

/** Whether anything subscribes, and whether the cursor exists yet: one read. */
const subscriptionProbe = prepared(
  (q) =>
    q
      .selectFrom('settings')
      .select((eb) => [
        eb.exists(eb.selectFrom('webhook_endpoints').select('id').where('enabled', '=', 1)).as('endpoints'),
        eb.exists(eb.selectFrom('account_config').select('account_id').where(hasReceiver)).as('receivers'),
      ])
      .where('key', '=', CURSOR_KEY),
  [],
);

/**
 * The pass when nothing subscribes: no transaction and no event read, one compiled statement in the
 * usual case (two when there is nothing new). Answers false when the full pass must run: a subscriber
 * exists, or the cursor does not exist yet.
 */
async function passWithoutSubscribers(db: Db, horizon: EventHorizon): Promise<boolean> {
  const upTo = await horizon.limit();
  if ((await catchUpUnsubscribed(db, { upTo, upToAgain: upTo })) > 0) return true;
  const [probe] = await subscriptionProbe(db, {});
  return probe !== undefined && !truthy(probe.endpoints) && !truthy(probe.receivers);
}

/** SQLite answers `exists` as 0 or 1, PostgreSQL as a boolean. */
const truthy = (value: unknown) => value === true || value === 1 || value === '1';

/**
 * One fan-out pass: committed outbox events past the cursor → one delivery per destination, and the
 * cursor, in one transaction. Returns how many events it read. With no subscriber at all the cursor
 * moves to the horizon without reading any event, outside a transaction (passWithoutSubscribers).
 */
export async function fanOutPass(options: {
  db: Db;
  transact: Transact;
  horizon: EventHorizon;
  clock: Clock;
}): Promise<number> {
  if (await passWithoutSubscribers(options.db, options.horizon)) return 0;
  return options.transact(async (trx, uow) => {
    // One fan-out at a time across processes; one that finds another at it leaves the work to it.
    if (uow.dialect === 'postgres') {
      const { rows } = await sql<{ ok: boolean }>`
        select pg_try_advisory_xact_lock(hashtext('otpilot:fan-out:' || current_schema())) as ok
      `.execute(trx);
      if (rows[0]?.ok !== true) return 0;
    }
    const upTo = await options.horizon.limit();
    const cursorRow = await trx.selectFrom('settings').select('value').where('key', '=', CURSOR_KEY).executeTakeFirst();
    const cursor = cursorRow ? Number(cursorRow.value) : 0;
    const moveCursor = (to: number) =>
      trx
        .insertInto('settings')
        .values({ key: CURSOR_KEY, value: String(to) })
        .onConflict((oc) => oc.column('key').doUpdateSet({ value: String(to) }))
        .execute();

    const subscribed =
      (await trx.selectFrom('webhook_endpoints').select('id').where('enabled', '=', 1).limit(1).execute()).length > 0 ||
      (await trx.selectFrom('account_config').select('account_id').where(hasReceiver).limit(1).execute()).length > 0;
    if (!subscribed) {
      const newest = await trx
        .selectFrom('events')
        .select((eb) => eb.fn.max('seq').as('seq'))
        .where('seq', '>', cursor)
        .where('seq', '<=', upTo)
        .executeTakeFirst();
      if (newest?.seq != null) await moveCursor(Number(newest.seq));
      return 0;
    }

    const events = await trx
      .selectFrom('events')
      .selectAll()
      .where('seq', '>', cursor)
      .where('seq', '<=', upTo)
      .orderBy('seq')
      .limit(FAN_OUT_BATCH)
      .execute();
    if (events.length === 0) return 0;
    const orgIds = [...new Set(events.map((e) => e.org_id))];
    const accountIds = [...new Set(events.map((e) => e.account_id).filter((a): a is string => a !== null))];
    const endpoints = await trx
      .selectFrom('webhook_endpoints')
      .select(['id', 'org_id', 'events', 'account_ids'])
      .where('org_id', 'in', orgIds)
      .where('enabled', '=', 1)
      .execute();
    const configs =
      accountIds.length > 0
        ? await trx
            .selectFrom('account_config')
            .select(['account_id', 'notification_endpoint_url', 'notification_events', 'webhook_url'])
            .where('account_id', 'in', accountIds)
            .where(hasReceiver)
            .execute()
        : [];
    const subscribers = subscribersFrom(endpoints, configs);
    const now = options.clock();
    const rows: unknown[][] = [];
    for (const event of events) {
      const to = destinationsFor({ orgId: event.org_id, accountId: event.account_id, type: event.type }, subscribers);
      for (const { destination, endpointId } of to) {
        const row = newDelivery(
          {
            id: newId('dlv', now),
            org_id: event.org_id,
            destination,
            endpoint_id: endpointId,
            account_key: event.account_id ?? '',
            event_id: event.id,
            event_seq: event.seq,
            payload: null,
          },
          now,
        );
        rows.push(DELIVERY_COLUMNS.map((column) => row[column]));
      }
    }
    for (let i = 0; i < rows.length; i += 500)
      await insertRows(trx, uow.dialect, 'deliveries', DELIVERY_COLUMNS, rows.slice(i, i + 500));
    await moveCursor(events[events.length - 1]!.seq);
    if (rows.length > 0) uow.wake('deliveries');
    return events.length;
  });
}
