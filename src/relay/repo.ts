import type { Db } from '../store/db.js';
import type { HeldSmsTable, RelaysTable } from '../store/schema.js';

export async function insertRelay(db: Db, row: RelaysTable): Promise<void> {
  await db.insertInto('relays').values(row).execute();
}

export async function listRelays(db: Db, orgId: string): Promise<RelaysTable[]> {
  return db.selectFrom('relays').selectAll().where('org_id', '=', orgId).orderBy('id', 'desc').execute();
}

export async function findRelay(db: Db, id: string): Promise<RelaysTable | undefined> {
  return db.selectFrom('relays').selectAll().where('id', '=', id).executeTakeFirst();
}

export async function deleteRelay(db: Db, orgId: string, id: string): Promise<boolean> {
  const result = await db.deleteFrom('relays').where('org_id', '=', orgId).where('id', '=', id).executeTakeFirst();
  return Number(result.numDeletedRows) === 1;
}

/** Whether the organization has any relay (fail-fast counts it as a way for SMS codes to arrive). */
export async function hasRelay(db: Db, orgId: string): Promise<boolean> {
  const row = await db.selectFrom('relays').select('id').where('org_id', '=', orgId).limit(1).executeTakeFirst();
  return row !== undefined;
}

/** An account that receives its codes on a number, with its SMS hints. */
export interface PhoneAccount {
  account_id: string;
  sms_sender: string | null;
  sms_code_pattern: string | null;
}

export async function accountsOnPhone(db: Db, orgId: string, phone: string): Promise<PhoneAccount[]> {
  return db
    .selectFrom('account_config')
    .select(['account_id', 'sms_sender', 'sms_code_pattern'])
    .where('org_id', '=', orgId)
    .where('otp_phone', '=', phone)
    .execute();
}

export async function insertHeld(db: Db, row: HeldSmsTable): Promise<void> {
  await db.insertInto('held_sms').values(row).execute();
}

export async function heldFor(db: Db, orgId: string, phone: string, now: number): Promise<HeldSmsTable[]> {
  return db
    .selectFrom('held_sms')
    .selectAll()
    .where('org_id', '=', orgId)
    .where('to_phone', '=', phone)
    .where('expires_at', '>', now)
    .orderBy('received_at')
    .execute();
}

/**
 * Takes held messages out of the store: only the rows this call deleted are returned, so of two
 * callers racing for the same message (the SMS path and the request-opened path) one gets it.
 */
export async function claimHeld(db: Db, ids: readonly string[]): Promise<HeldSmsTable[]> {
  if (ids.length === 0) return [];
  return db
    .deleteFrom('held_sms')
    .where('id', 'in', [...ids])
    .returningAll()
    .execute();
}

/** Whether any SMS is held at all, expired or not. */
export async function anyHeld(db: Db): Promise<boolean> {
  const row = await db.selectFrom('held_sms').select('id').limit(1).executeTakeFirst();
  return row !== undefined;
}

export async function discardExpiredHeld(db: Db, now: number): Promise<number> {
  const result = await db.deleteFrom('held_sms').where('expires_at', '<=', now).executeTakeFirst();
  return Number(result.numDeletedRows);
}
