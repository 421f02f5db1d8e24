import { createHash } from 'node:crypto';
import type { Static } from 'typebox';
import { findPendingRequest } from '../assistance/reads.js';
import { type AssistanceView, assistanceView } from '../assistance/view.js';
import { iso } from '../core/time.js';
import type { Db } from '../store/db.js';
import { ACTIVE_STATES } from '../store/literals.js';
import { prepared } from '../store/prepared.js';
import { accountStatus } from './repo.js';
import type { StatusSchema } from './schemas.js';

/** The status object (docs/api.md "Status"); the request is a schema reference, typed here. */
export type StatusView = Omit<Static<typeof StatusSchema>, 'pending_assistance'> & {
  pending_assistance: AssistanceView | null;
};

const statusRow = prepared(
  (q, p) =>
    q
      .selectFrom('accounts as a')
      .leftJoin('sessions as s', (join) => join.onRef('s.account_id', '=', 'a.id').on('s.state', 'in', ACTIVE_STATES))
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
      .where('a.org_id', '=', p.orgId)
      .where('a.id', '=', p.accountId),
  ['orgId', 'accountId'] as const,
);

/** Builds an account's status in at most two indexed queries (it is the most polled route). */
export async function readStatus(db: Db, orgId: string, accountId: string): Promise<StatusView | null> {
  const [row] = await statusRow(db, { orgId, accountId });
  if (!row) return null;
  const pending = row.session_state ? await findPendingRequest(db, accountId) : undefined;
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
