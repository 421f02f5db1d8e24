import { sql } from 'kysely';
import { decodeKeyCursor, encodeKeyCursor } from '../http/schemas.js';
import type { Db } from '../store/db.js';
import { type MovementView, movementView } from './ingest.js';

/** Filters shared by `GET …/movements` and the data API's `transactions`. Dates are YYYY-MM-DD, inclusive. */
export interface MovementQuery {
  limit: number;
  cursor?: string | undefined;
  from?: string | undefined;
  to?: string | undefined;
  bank_account_id?: string | undefined;
  /** Words in the description or reference, any case. */
  q?: string | undefined;
  /** Least and greatest amount, compared without the sign (a debit of 120 matches 100–150), decimal strings. */
  min_amount?: string | undefined;
  max_amount?: string | undefined;
}

/** One page of an account's movements, newest booking first (throws VALIDATION_FAILED on a foreign cursor). */
export async function listMovements(
  db: Db,
  accountId: string,
  query: MovementQuery,
): Promise<{ data: MovementView[]; next_cursor: string | null }> {
  const { limit, cursor, from, to, bank_account_id, q: text, min_amount, max_amount } = query;
  let q = db.selectFrom('movements').selectAll().where('account_id', '=', accountId);
  if (from) q = q.where('booked_at', '>=', from);
  // booked_at may carry a time; everything on the `to` day is included.
  if (to) q = q.where('booked_at', '<', `${to}\uffff`);
  if (bank_account_id) q = q.where('bank_account_id', '=', bank_account_id);
  if (text?.trim()) {
    // The text is a literal: % and _ in it match themselves.
    const like = `%${text
      .trim()
      .toLowerCase()
      .replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
    q = q.where((eb) =>
      eb.or([
        eb(sql`lower(name)`, 'like', sql`${like} escape '\\'`),
        eb(sql`lower(coalesce(reference, ''))`, 'like', sql`${like} escape '\\'`),
      ]),
    );
  }
  const magnitude = sql<number>`abs(cast(amount as double precision))`;
  if (min_amount !== undefined) q = q.where(magnitude, '>=', Number(min_amount));
  if (max_amount !== undefined) q = q.where(magnitude, '<=', Number(max_amount));
  // Newest booking first; the id breaks ties so pages never skip or repeat a movement.
  const after = decodeKeyCursor(cursor, 2);
  if (after) {
    const [bookedAt, id] = after as [string, string];
    q = q.where((eb) =>
      eb.or([eb('booked_at', '<', bookedAt), eb.and([eb('booked_at', '=', bookedAt), eb('id', '<', id)])]),
    );
  }
  const rows = await q
    .orderBy('booked_at', 'desc')
    .orderBy('id', 'desc')
    .limit(limit + 1)
    .execute();
  const more = rows.length > limit;
  const slice = more ? rows.slice(0, limit) : rows;
  const last = slice[slice.length - 1];
  return {
    data: slice.map(movementView),
    next_cursor: more && last ? encodeKeyCursor([last.booked_at, last.id]) : null,
  };
}
