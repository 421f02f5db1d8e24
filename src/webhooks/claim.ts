import { newId } from '../core/ids.js';
import type { Transact } from '../events/outbox.js';
import type { Db } from '../store/db.js';
import { OPEN_DELIVERY } from '../store/literals.js';
import type { DeliveriesTable, DeliveryStatus } from '../store/schema.js';
import { DISABLE_AFTER_MS, nextAttemptAt } from './retry.js';
import type { AttemptResult } from './sender.js';

/**
 * Due deliveries at the head of their line (destination × account), claimed for `owner` until
 * `now + leaseMs`. One at a time per line, so each receiver sees an account's events in order.
 */
export async function claimDeliveries(
  db: Db,
  options: { owner: string; now: number; leaseMs: number; limit: number },
): Promise<DeliveriesTable[]> {
  const { owner, now } = options;
  const due = await db
    .selectFrom('deliveries as d')
    .select('d.id')
    .where('d.status', 'in', OPEN_DELIVERY)
    .where('d.next_attempt_at', '<=', now)
    .where((eb) => eb.or([eb('d.lease_owner', 'is', null), eb('d.lease_expires_at', '<', now)]))
    .where(({ not, exists, selectFrom }) =>
      not(
        exists(
          selectFrom('deliveries as e')
            .select('e.id')
            .whereRef('e.destination', '=', 'd.destination')
            .whereRef('e.account_key', '=', 'd.account_key')
            .where('e.status', 'in', OPEN_DELIVERY)
            .whereRef('e.event_seq', '<', 'd.event_seq'),
        ),
      ),
    )
    .orderBy('d.next_attempt_at')
    .limit(options.limit)
    .execute();
  if (due.length === 0) return [];
  return db
    .updateTable('deliveries')
    .set({ lease_owner: owner, lease_expires_at: now + options.leaseMs })
    .where(
      'id',
      'in',
      due.map((d) => d.id),
    )
    .where((eb) => eb.or([eb('lease_owner', 'is', null), eb('lease_expires_at', '<', now)]))
    .returningAll()
    .execute();
}

/**
 * A sole worker starting up: a delivery leased to another owner was cut off when its process died,
 * so the lease is given up now and the delivery is sent again at once, not a lease later.
 */
export async function releaseDeliveriesOfOthers(db: Db, owner: string): Promise<void> {
  await db
    .updateTable('deliveries')
    .set({ lease_owner: null, lease_expires_at: null })
    .where('status', 'in', OPEN_DELIVERY)
    .where('lease_owner', 'is not', null)
    .where('lease_owner', '!=', owner)
    .execute();
}

/** Ends a claimed delivery that cannot be sent (its destination or event is gone). */
export async function markDead(db: Db, delivery: DeliveriesTable, owner: string, error: string, now: number) {
  await db
    .updateTable('deliveries')
    .set({ status: 'dead', error, lease_owner: null, lease_expires_at: null, updated_at: now })
    .where('id', '=', delivery.id)
    .where('lease_owner', '=', owner)
    .execute();
}

/**
 * Records one attempt on a claimed delivery: its status and next attempt, the attempt row, and the
 * endpoint's health (an endpoint failing for `DISABLE_AFTER_MS` is disabled, with an event). Nothing
 * is recorded when the lease was lost (the next holder records its own attempt). Returns the
 * delivery's new status and the endpoint disabled by this attempt, if one was.
 */
export function recordAttempt(
  transact: Transact,
  options: { delivery: DeliveriesTable; owner: string; result: AttemptResult; at: number; random: number },
): Promise<{ status: DeliveryStatus; disabled: string | null }> {
  const { delivery, owner, result, at } = options;
  const attempt = delivery.attempt + 1;
  const succeeded = result.status !== null && result.status >= 200 && result.status < 300;
  const next = succeeded ? null : nextAttemptAt(attempt, at, options.random);
  const status = succeeded ? 'succeeded' : next === null ? 'dead' : 'failed';
  return transact(async (trx, uow) => {
    const updated = await trx
      .updateTable('deliveries')
      .set({
        status,
        attempt,
        next_attempt_at: next,
        response_status: result.status,
        duration_ms: result.durationMs,
        error: result.error ?? (succeeded ? null : `HTTP ${result.status}`),
        lease_owner: null,
        lease_expires_at: null,
        updated_at: at,
      })
      .where('id', '=', delivery.id)
      .where('lease_owner', '=', owner)
      .executeTakeFirst();
    if (Number(updated.numUpdatedRows) === 0) return { status, disabled: null };
    await trx
      .insertInto('delivery_attempts')
      .values({
        id: newId('dlv', at),
        delivery_id: delivery.id,
        attempt,
        response_status: result.status,
        duration_ms: result.durationMs,
        error: result.error,
        response_body: result.body,
        created_at: at,
      })
      .execute();
    const endpointId = delivery.endpoint_id;
    if (!endpointId) return { status, disabled: null };
    if (succeeded) {
      await trx
        .updateTable('webhook_endpoints')
        .set({ failing_since: null })
        .where('id', '=', endpointId)
        .where('failing_since', 'is not', null)
        .execute();
      return { status, disabled: null };
    }
    await trx
      .updateTable('webhook_endpoints')
      .set({ failing_since: at })
      .where('id', '=', endpointId)
      .where('failing_since', 'is', null)
      .execute();
    const endpoint = await trx
      .selectFrom('webhook_endpoints')
      .select(['org_id', 'url', 'failing_since', 'enabled'])
      .where('id', '=', endpointId)
      .executeTakeFirst();
    if (endpoint?.enabled !== 1 || endpoint.failing_since === null || at - endpoint.failing_since < DISABLE_AFTER_MS)
      return { status, disabled: null };
    const reason = 'every delivery failed for 5 days';
    await trx
      .updateTable('webhook_endpoints')
      .set({ enabled: 0, disabled_reason: reason, updated_at: at })
      .where('id', '=', endpointId)
      .execute();
    uow.emit({
      orgId: endpoint.org_id,
      accountId: null,
      type: 'webhook_endpoint_disabled',
      data: { id: endpointId, url: endpoint.url, reason },
    });
    return { status, disabled: endpointId };
  });
}
