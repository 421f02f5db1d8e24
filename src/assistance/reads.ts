import type { Kysely } from 'kysely';
import type { AssistanceState } from '../core/states.js';
import type { BatchCheck } from '../events/waiters.js';
import { PENDING } from '../store/literals.js';
import { prepared } from '../store/prepared.js';
import type { CodeSubmissionsTable, Database } from '../store/schema.js';
import { type AssistanceRequest, toRequest } from './request.js';

/** Reads of assistance requests and submissions; every row comes back through `toRequest`. */

type Db = Kysely<Database>;

const pendingRequest = prepared(
  (q, p) =>
    q.selectFrom('assistance_requests').selectAll().where('account_id', '=', p.accountId).where('state', '=', PENDING),
  ['accountId'] as const,
);

/** The account's pending request (the status route reads it on every call: compiled once). */
export async function findPendingRequest(db: Db, accountId: string): Promise<AssistanceRequest | undefined> {
  const [row] = await pendingRequest(db, { accountId });
  return row && toRequest(row);
}

export async function findRequest(db: Db, id: string): Promise<AssistanceRequest | undefined> {
  const row = await db.selectFrom('assistance_requests').selectAll().where('id', '=', id).executeTakeFirst();
  return row && toRequest(row);
}

/** The pending request of one session (at most one). */
export async function findPendingForSession(db: Db, sessionId: string): Promise<AssistanceRequest | undefined> {
  const row = await db
    .selectFrom('assistance_requests')
    .selectAll()
    .where('session_id', '=', sessionId)
    .where('state', '=', PENDING)
    .executeTakeFirst();
  return row && toRequest(row);
}

/** The pending requests of these accounts (at most one each). */
export async function pendingRequestsOf(db: Db, accountIds: readonly string[]): Promise<AssistanceRequest[]> {
  if (accountIds.length === 0) return [];
  const rows = await db
    .selectFrom('assistance_requests')
    .selectAll()
    .where('account_id', 'in', [...accountIds])
    .where('state', '=', PENDING)
    .execute();
  return rows.map(toRequest);
}

export async function listRequests(
  db: Db,
  query: {
    orgId: string;
    accountIds: ReadonlySet<string> | null;
    accountId?: string;
    state?: AssistanceState;
    limit: number;
    after: string | null;
  },
): Promise<AssistanceRequest[]> {
  let q = db.selectFrom('assistance_requests').selectAll().where('org_id', '=', query.orgId);
  if (query.accountIds) {
    if (query.accountIds.size === 0) return [];
    q = q.where('account_id', 'in', [...query.accountIds]);
  }
  if (query.accountId) q = q.where('account_id', '=', query.accountId);
  if (query.state) q = q.where('state', '=', query.state);
  if (query.after) q = q.where('id', '<', query.after);
  return (await q.orderBy('id', 'desc').limit(query.limit).execute()).map(toRequest);
}

export async function findSubmission(db: Db, id: string): Promise<CodeSubmissionsTable | undefined> {
  return db.selectFrom('code_submissions').selectAll().where('id', '=', id).executeTakeFirst();
}

/**
 * The waits on assistance requests that share the process's batched fallback (`Waiters`): `code`,
 * a login waiting for a code to take (ready when one is stored or the request closed); `closed`, a
 * login waiting for the request to close (an approval's).
 */
export type AssistanceWait = 'code' | 'closed';

/**
 * One query per batch: which of these requests are still waiting (everything else is ready,
 * including a request that vanished with its account, so its waiter reads and finds out).
 */
export function assistanceChecks(db: Db): Record<AssistanceWait, BatchCheck> {
  const notWaiting =
    (stillWaiting: (keys: readonly string[]) => Promise<{ id: string }[]>) => async (keys: readonly string[]) => {
      const waiting = new Set((await stillWaiting(keys)).map((row) => row.id));
      return keys.filter((key) => !waiting.has(key));
    };
  const pending = (keys: readonly string[]) =>
    db
      .selectFrom('assistance_requests')
      .select('id')
      .where('id', 'in', [...keys])
      .where('state', '=', PENDING);
  return {
    code: notWaiting((keys) => pending(keys).where('code_enc', 'is', null).execute()),
    closed: notWaiting((keys) => pending(keys).execute()),
  };
}
