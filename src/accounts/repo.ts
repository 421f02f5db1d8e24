import type { Kysely } from 'kysely';
import type { Static } from 'typebox';
import type { AccountStatus, SessionState } from '../core/states.js';
import { iso } from '../core/time.js';
import { ACTIVE_STATES } from '../store/literals.js';
import { prepared } from '../store/prepared.js';
import type { AccountConfigTable, AccountsTable, Database } from '../store/schema.js';
import type { AccountSchema } from './schemas.js';

export type AccountRow = AccountsTable & { session_state: SessionState | null };

/** The account object of the API. */
export type AccountView = Static<typeof AccountSchema>;

export function accountStatus(blockedAt: number | null, sessionState: SessionState | null): AccountStatus {
  if (sessionState === 'queued' || sessionState === 'running' || sessionState === 'awaiting_assistance')
    return sessionState;
  return blockedAt !== null ? 'blocked' : 'idle';
}

export function accountView(row: AccountRow): AccountView {
  return {
    id: row.id,
    bank_id: row.bank_id,
    name: row.name,
    status: accountStatus(row.blocked_at, row.session_state),
    blocked_at: iso(row.blocked_at),
    blocked_reason: row.blocked_reason,
    consecutive_failures: row.consecutive_failures,
    has_credentials: row.credentials_enc !== null,
    last_success_at: iso(row.last_success_at),
    last_run_at: iso(row.last_run_at),
    next_run_at: iso(row.next_run_at),
    trust_expires_at: iso(row.trust_expires_at),
    trust_challenged_at: iso(row.trust_challenged_at),
    live_session_since: iso(row.live_session_owner === null ? null : row.live_session_since),
    created_at: iso(row.created_at),
    updated_at: iso(row.updated_at),
  };
}

function selectAccounts(db: Kysely<Database>) {
  return db
    .selectFrom('accounts as a')
    .leftJoin('sessions as s', (join) => join.onRef('s.account_id', '=', 'a.id').on('s.state', 'in', ACTIVE_STATES))
    .selectAll('a')
    .select('s.state as session_state');
}

/** Compiled once: every account-scoped request (a scrape, a code, a session read) starts with it. */
const accountById = prepared(
  (q, p) => selectAccounts(q).where('a.org_id', '=', p.orgId).where('a.id', '=', p.id),
  ['orgId', 'id'],
);

export async function findAccount(db: Kysely<Database>, orgId: string, id: string): Promise<AccountRow | undefined> {
  return (await accountById(db, { orgId, id }))[0];
}

export async function listAccounts(
  db: Kysely<Database>,
  query: { orgId: string; accountIds: ReadonlySet<string> | null; limit: number; after: string | null },
): Promise<AccountRow[]> {
  let q = selectAccounts(db).where('a.org_id', '=', query.orgId);
  if (query.accountIds) {
    if (query.accountIds.size === 0) return [];
    q = q.where('a.id', 'in', [...query.accountIds]);
  }
  if (query.after) q = q.where('a.id', '<', query.after);
  return q.orderBy('a.id', 'desc').limit(query.limit).execute();
}

export async function findConfig(db: Kysely<Database>, accountId: string): Promise<AccountConfigTable | undefined> {
  return db.selectFrom('account_config').selectAll().where('account_id', '=', accountId).executeTakeFirst();
}

/** Which of `ids` are not accounts of this organization. */
export async function missingAccounts(db: Kysely<Database>, orgId: string, ids: readonly string[]): Promise<string[]> {
  if (ids.length === 0) return [];
  const found = await db
    .selectFrom('accounts')
    .select('id')
    .where('org_id', '=', orgId)
    .where('id', 'in', [...ids])
    .execute();
  const known = new Set(found.map((row) => row.id));
  return ids.filter((id) => !known.has(id));
}
