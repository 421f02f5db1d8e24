import type { Kysely } from 'kysely';
import type { Actor } from '../audit/repo.js';
import type { ConnectSessionsTable, Database, ReauthTokensTable } from '../store/schema.js';

export async function insertToken(db: Kysely<Database>, row: ReauthTokensTable): Promise<void> {
  await db.insertInto('reauth_tokens').values(row).execute();
}

export async function findToken(db: Kysely<Database>, hash: string): Promise<ReauthTokensTable | undefined> {
  return db.selectFrom('reauth_tokens').selectAll().where('token_hash', '=', hash).executeTakeFirst();
}

/** Spends an unused, unexpired token (compare-and-set): of two racing uses, one wins. */
export async function spendToken(
  db: Kysely<Database>,
  hash: string,
  connectSessionId: string,
  now: number,
): Promise<boolean> {
  const result = await db
    .updateTable('reauth_tokens')
    .set({ used_at: now, connect_session_id: connectSessionId })
    .where('token_hash', '=', hash)
    .where('used_at', 'is', null)
    .where('expires_at', '>', now)
    .executeTakeFirst();
  return Number(result.numUpdatedRows) === 1;
}

export async function insertConnectSession(db: Kysely<Database>, row: ConnectSessionsTable): Promise<void> {
  await db.insertInto('connect_sessions').values(row).execute();
}

export async function findConnectSession(
  db: Kysely<Database>,
  orgId: string,
  id: string,
): Promise<ConnectSessionsTable | undefined> {
  return db
    .selectFrom('connect_sessions')
    .selectAll()
    .where('org_id', '=', orgId)
    .where('id', '=', id)
    .executeTakeFirst();
}

/** The connect session still waiting for this login to succeed, if any. */
export async function findWaitingFor(
  db: Kysely<Database>,
  sessionId: string,
): Promise<ConnectSessionsTable | undefined> {
  return db
    .selectFrom('connect_sessions')
    .selectAll()
    .where('session_id', '=', sessionId)
    .where('reauthorized_at', 'is', null)
    .executeTakeFirst();
}

/** Whether any connect session still waits for its login to succeed (any login, any organization). */
export async function anyWaiting(db: Kysely<Database>): Promise<boolean> {
  const row = await db
    .selectFrom('connect_sessions')
    .select('id')
    .where('reauthorized_at', 'is', null)
    .limit(1)
    .executeTakeFirst();
  return row !== undefined;
}

/** Moves a connect session from one login to the next; false when another commit moved it first. */
export async function moveConnectSession(db: Kysely<Database>, id: string, from: string, to: string): Promise<boolean> {
  const result = await db
    .updateTable('connect_sessions')
    .set({ session_id: to })
    .where('id', '=', id)
    .where('session_id', '=', from)
    .where('reauthorized_at', 'is', null)
    .executeTakeFirst();
  return Number(result.numUpdatedRows) === 1;
}

/** Marks the connect session reauthorised; true only for the one caller that did it. */
export async function markReauthorized(db: Kysely<Database>, id: string, now: number): Promise<boolean> {
  const result = await db
    .updateTable('connect_sessions')
    .set({ reauthorized_at: now })
    .where('id', '=', id)
    .where('reauthorized_at', 'is', null)
    .executeTakeFirst();
  return Number(result.numUpdatedRows) === 1;
}

export const actorOf = (row: Pick<ConnectSessionsTable, 'actor_type' | 'actor_id'>): Actor => ({
  type: row.actor_type,
  id: row.actor_id,
});
