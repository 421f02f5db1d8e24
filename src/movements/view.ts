import type { Static } from 'typebox';
import type { MovementsTable } from '../store/schema.js';
import type { MovementSchema } from './schemas.js';

/** The movement object of the API and of `bank_movement` events. */
export type MovementView = Static<typeof MovementSchema>;

/** The columns a movement's view is made of. */
export type MovementViewRow = Omit<MovementsTable, 'org_id' | 'dedup_key' | 'session_id'>;

export function movementView(row: MovementViewRow): MovementView {
  return {
    id: row.id,
    account_id: row.account_id,
    bank_account_id: row.bank_account_id,
    // `?? null`: a plugin's movement may leave them out; the stored row, and so every reader, has null.
    external_id: row.external_id ?? null,
    booked_at: row.booked_at,
    amount: row.amount,
    currency: row.currency,
    name: row.name,
    reference: row.reference ?? null,
    received_at: new Date(row.created_at).toISOString(),
  };
}
