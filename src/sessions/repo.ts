import type { Kysely } from 'kysely';
import { newId } from '../core/ids.js';
import type { FailureCategory, SessionState, SessionTrigger } from '../core/states.js';
import { iso } from '../core/time.js';
import { ACTIVE_STATES } from '../store/literals.js';
import type { Database, SessionsTable } from '../store/schema.js';

export interface Stage {
  name: string;
  at: string;
}

/** A session as the API shows it, with its stages and failure category. */
export interface SessionView {
  id: string;
  account_id: string;
  state: SessionState;
  trigger: SessionTrigger;
  failure_category: FailureCategory | null;
  failure_message: string | null;
  stages: Stage[];
  cancel_requested: boolean;
  movements_new: number;
  queued_at: string;
  started_at: string | null;
  finished_at: string | null;
}

export function sessionView(row: SessionsTable): SessionView {
  return {
    id: row.id,
    account_id: row.account_id,
    state: row.state,
    trigger: row.trigger,
    failure_category: row.failure_category as FailureCategory | null,
    failure_message: row.failure_message,
    stages: JSON.parse(row.stages) as Stage[],
    cancel_requested: row.cancel_requested_at !== null,
    movements_new: row.movements_new,
    queued_at: iso(row.queued_at),
    started_at: iso(row.started_at),
    finished_at: iso(row.finished_at),
  };
}

/**
 * Queues a session unless one is already active for the account (the unique partial index decides,
 * so two callers racing cannot both win). Returns the new id, or null when one was active.
 */
export async function queueSession(
  db: Kysely<Database>,
  input: { orgId: string; accountId: string; trigger: SessionTrigger; now: number },
): Promise<string | null> {
  const id = newId('ses', input.now);
  const inserted = await db
    .insertInto('sessions')
    .values({
      id,
      org_id: input.orgId,
      account_id: input.accountId,
      state: 'queued',
      trigger: input.trigger,
      failure_category: null,
      failure_message: null,
      stages: '[]',
      lease_owner: null,
      lease_expires_at: null,
      cancel_requested_at: null,
      movements_new: 0,
      queued_at: input.now,
      started_at: null,
      finished_at: null,
    })
    .onConflict((oc) => oc.doNothing())
    .returning('id')
    .executeTakeFirst();
  return inserted?.id ?? null;
}

export async function findActiveSession(db: Kysely<Database>, accountId: string): Promise<SessionsTable | undefined> {
  return db
    .selectFrom('sessions')
    .selectAll()
    .where('account_id', '=', accountId)
    .where('state', 'in', ACTIVE_STATES)
    .executeTakeFirst();
}

export async function findSession(db: Kysely<Database>, orgId: string, id: string): Promise<SessionsTable | undefined> {
  return db.selectFrom('sessions').selectAll().where('org_id', '=', orgId).where('id', '=', id).executeTakeFirst();
}

export async function listSessions(
  db: Kysely<Database>,
  query: { accountId: string; limit: number; after: string | null },
): Promise<SessionsTable[]> {
  let q = db.selectFrom('sessions').selectAll().where('account_id', '=', query.accountId);
  if (query.after) q = q.where('id', '<', query.after);
  return q.orderBy('id', 'desc').limit(query.limit).execute();
}

/**
 * Queues a login for the account, or joins the one already active (one active session per account:
 * a scheduled login already waiting for a code is the login to finish). Returns its id and whether
 * it is new.
 */
export async function startOrJoinLogin(
  db: Kysely<Database>,
  input: { orgId: string; accountId: string; now: number },
): Promise<{ sessionId: string; queued: boolean }> {
  // Twice: an active session may end between the refused insert and the look-up.
  for (let i = 0; i < 2; i++) {
    const queued = await queueSession(db, { ...input, trigger: 'manual' });
    if (queued) return { sessionId: queued, queued: true };
    const active = await findActiveSession(db, input.accountId);
    if (active) return { sessionId: active.id, queued: false };
  }
  throw new Error(`could neither queue nor find a login for ${input.accountId}`);
}
