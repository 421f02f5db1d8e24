import type { Kysely } from 'kysely';
import type { FailureCategory, SessionState, SessionTrigger } from '../core/states.js';
import { iso } from '../core/time.js';
import type { Database, SessionsTable } from '../store/schema.js';
import type { Stage } from './transitions.js';

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
