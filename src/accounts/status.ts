import { createHash } from 'node:crypto';
import type { Static } from 'typebox';
import { type AssistanceRequest, toRequest } from '../assistance/request.js';
import { type AssistanceView, assistanceView } from '../assistance/view.js';
import { iso } from '../core/time.js';
import type { Db } from '../store/db.js';
import { ACTIVE_STATES, PENDING } from '../store/literals.js';
import { prepared } from '../store/prepared.js';
import type { AssistanceRequestsTable, SessionsTable } from '../store/schema.js';
import { accountStatus } from './repo.js';
import type { StatusSchema } from './schemas.js';

/** The status object (docs/api.md "Status"); the request is a schema reference, typed here. */
export type StatusView = Omit<Static<typeof StatusSchema>, 'pending_assistance'> & {
  pending_assistance: AssistanceView | null;
};

/** The pending request's columns, read beside the status row (prefixed `r_`). */
const REQUEST_COLUMNS = [
  'id',
  'org_id',
  'account_id',
  'session_id',
  'type',
  'state',
  'descriptor',
  'attempts',
  'max_attempts',
  'resends',
  'last_error',
  'code_enc',
  'code_submitted_at',
  'code_via',
  'created_at',
  'expires_at',
  'resolved_at',
  'resolution_via',
  'resolution_reason',
  'submission_id',
] as const satisfies readonly (keyof AssistanceRequestsTable)[];

type Prefixed = { [K in (typeof REQUEST_COLUMNS)[number] as `r_${K}`]: AssistanceRequestsTable[K] | null };

interface StatusRow extends Prefixed {
  id: string;
  blocked_at: number | null;
  blocked_reason: string | null;
  last_success_at: number | null;
  next_run_at: number | null;
  trust_expires_at: number | null;
  live_session_owner: string | null;
  live_session_since: number | null;
  session_id: string | null;
  session_state: SessionsTable['state'] | null;
  session_started_at: number | null;
}

/**
 * The account, its active session and that session's pending request in one indexed read (each
 * join finds at most one row: one active session per account, one pending request per account).
 */
const statusRow = prepared(
  (q, p) =>
    q
      .selectFrom('accounts as a')
      .leftJoin('sessions as s', (join) => join.onRef('s.account_id', '=', 'a.id').on('s.state', 'in', ACTIVE_STATES))
      .leftJoin('assistance_requests as r', (join) =>
        join.onRef('r.account_id', '=', 'a.id').on('r.state', '=', PENDING),
      )
      .select([
        'a.id',
        'a.blocked_at',
        'a.blocked_reason',
        'a.last_success_at',
        'a.next_run_at',
        'a.trust_expires_at',
        'a.live_session_owner',
        'a.live_session_since',
        's.id as session_id',
        's.state as session_state',
        's.started_at as session_started_at',
      ])
      .select((eb) => REQUEST_COLUMNS.map((column) => eb.ref(`r.${column}`).as(`r_${column}`)))
      .where('a.org_id', '=', p.orgId)
      .where('a.id', '=', p.accountId),
  ['orgId', 'accountId'] as const,
);

/** The pending request carried by a status row, if any. */
function pendingOf(row: StatusRow): AssistanceRequest | undefined {
  if (row.session_state === null || row.r_id === null) return undefined;
  const request = Object.fromEntries(REQUEST_COLUMNS.map((column) => [column, row[`r_${column}`]]));
  return toRequest(request as unknown as AssistanceRequestsTable);
}

/** Builds an account's status in one indexed query (it is the most polled route). */
export async function readStatus(db: Db, orgId: string, accountId: string): Promise<StatusView | null> {
  const [row] = (await statusRow(db, { orgId, accountId })) as unknown as StatusRow[];
  if (!row) return null;
  const pending = pendingOf(row);
  return {
    account_id: row.id,
    status: accountStatus(row.blocked_at, row.session_state),
    blocked_at: iso(row.blocked_at),
    blocked_reason: row.blocked_reason,
    session_running: row.session_state !== null && row.session_state !== 'queued',
    session:
      row.session_id && row.session_state
        ? { id: row.session_id, state: row.session_state, started_at: iso(row.session_started_at) }
        : null,
    pending_assistance: pending ? assistanceView(pending) : null,
    last_success_at: iso(row.last_success_at),
    next_run_at: iso(row.next_run_at),
    trust_expires_at: iso(row.trust_expires_at),
    live_session_since: iso(row.live_session_owner === null ? null : row.live_session_since),
  };
}

/** A strong validator of a status, for `ETag` / `If-None-Match` long-polls. */
export function statusTag(status: StatusView): string {
  return `"${createHash('sha1').update(JSON.stringify(status)).digest('base64url')}"`;
}
