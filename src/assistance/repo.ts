import type { Kysely } from 'kysely';
import type { ApprovalDescriptor, CodeDescriptor } from '../core/descriptor.js';
import type { AssistanceState, CodeVia } from '../core/states.js';
import { iso } from '../core/time.js';
import { PENDING } from '../store/literals.js';
import { prepared } from '../store/prepared.js';
import type { AssistanceRequestsTable, Database } from '../store/schema.js';

/**
 * The assistance request object of api.md. `otp` asks for a code; `approval` waits for the user to
 * approve the login in the bank's app (it takes no code: attempts stay 0 of 0).
 */
export type AssistanceView = AssistanceFields &
  ({ type: 'otp'; descriptor: CodeDescriptor } | { type: 'approval'; descriptor: ApprovalDescriptor });

interface AssistanceFields {
  id: string;
  account_id: string;
  session_id: string;
  state: AssistanceState;
  attempts: number;
  max_attempts: number;
  /** New codes the bank was asked to send. */
  resends: number;
  last_error: string | null;
  /** True while the bank is judging a submitted code (a further code is refused with CODE_IN_FLIGHT). */
  code_in_flight: boolean;
  created_at: string;
  expires_at: string;
  resolved_at: string | null;
  resolution: { via: CodeVia | null; reason: string | null } | null;
}

export function assistanceView(row: AssistanceRequestsTable): AssistanceView {
  const fields: AssistanceFields = {
    id: row.id,
    account_id: row.account_id,
    session_id: row.session_id,
    state: row.state,
    attempts: row.attempts,
    max_attempts: row.max_attempts,
    resends: row.resends,
    last_error: row.last_error,
    code_in_flight: row.code_submitted_at !== null,
    created_at: iso(row.created_at),
    expires_at: iso(row.expires_at),
    resolved_at: iso(row.resolved_at),
    resolution:
      row.state === 'pending'
        ? null
        : { via: (row.resolution_via as CodeVia | null) ?? null, reason: row.resolution_reason },
  };
  switch (row.type) {
    case 'otp':
      return { ...fields, type: 'otp', descriptor: JSON.parse(row.descriptor) as CodeDescriptor };
    case 'approval':
      return { ...fields, type: 'approval', descriptor: JSON.parse(row.descriptor) as ApprovalDescriptor };
    default: {
      const never: never = row.type;
      throw new Error(`unknown request type ${String(never)}`);
    }
  }
}

const pendingRequest = prepared(
  (q, p) =>
    q.selectFrom('assistance_requests').selectAll().where('account_id', '=', p.accountId).where('state', '=', PENDING),
  ['accountId'] as const,
);

/** The account's pending request (the status route reads it on every call: compiled once). */
export async function findPendingRequest(
  db: Kysely<Database>,
  accountId: string,
): Promise<AssistanceRequestsTable | undefined> {
  const [row] = await pendingRequest(db, { accountId });
  return row;
}

export async function findRequest(db: Kysely<Database>, id: string): Promise<AssistanceRequestsTable | undefined> {
  return db.selectFrom('assistance_requests').selectAll().where('id', '=', id).executeTakeFirst();
}

export async function listRequests(
  db: Kysely<Database>,
  query: {
    orgId: string;
    accountIds: ReadonlySet<string> | null;
    accountId?: string;
    state?: AssistanceState;
    limit: number;
    after: string | null;
  },
): Promise<AssistanceRequestsTable[]> {
  let q = db.selectFrom('assistance_requests').selectAll().where('org_id', '=', query.orgId);
  if (query.accountIds) {
    if (query.accountIds.size === 0) return [];
    q = q.where('account_id', 'in', [...query.accountIds]);
  }
  if (query.accountId) q = q.where('account_id', '=', query.accountId);
  if (query.state) q = q.where('state', '=', query.state);
  if (query.after) q = q.where('id', '<', query.after);
  return q.orderBy('id', 'desc').limit(query.limit).execute();
}
