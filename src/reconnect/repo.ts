import type { Kysely } from 'kysely';
import { newUnguessableId } from '../core/ids.js';
import { OPEN_RESULT } from '../store/literals.js';
import type { Database } from '../store/schema.js';

/** A reconnect id lives 30 days; results are kept as long. */
export const RECONNECT_TTL_MS = 30 * 86_400_000;

/**
 * The reconnect of an account's login that needs its owner: the pending one when it exists (one
 * owner, one widget), else a new one. The caller links its results to it.
 */
export async function openReconnect(
  db: Kysely<Database>,
  input: { orgId: string; accountId: string; sessionId: string; now: number },
): Promise<string> {
  const existing = await db
    .selectFrom('reconnects')
    .select(['id', 'session_id'])
    .where('account_id', '=', input.accountId)
    .where('state', '=', 'pending')
    .where('expires_at', '>', input.now)
    .orderBy('id', 'desc')
    .executeTakeFirst();
  if (existing) {
    // Every result already waiting on it follows to the new login, or it would settle FAILED later.
    if (existing.session_id !== input.sessionId) {
      await moveReconnect(db, { reconnectId: existing.id, sessionId: input.sessionId, now: input.now });
    }
    return existing.id;
  }
  const id = newUnguessableId('rcn', input.now);
  await db
    .insertInto('reconnects')
    .values({
      id,
      org_id: input.orgId,
      account_id: input.accountId,
      session_id: input.sessionId,
      state: 'pending',
      created_at: input.now,
      expires_at: input.now + RECONNECT_TTL_MS,
      completed_at: null,
    })
    .execute();
  return id;
}

/** Points a reconnect and the results waiting on it at a new login (the old one ended). */
export async function moveReconnect(
  db: Kysely<Database>,
  input: { reconnectId: string; sessionId: string; now: number },
): Promise<void> {
  await db.updateTable('reconnects').set({ session_id: input.sessionId }).where('id', '=', input.reconnectId).execute();
  await db
    .updateTable('results')
    .set({ session_id: input.sessionId, updated_at: input.now })
    .where('reconnect_id', '=', input.reconnectId)
    .where('status', 'in', OPEN_RESULT)
    .execute();
}
