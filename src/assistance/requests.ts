import { CompiledQuery, type Kysely } from 'kysely';
import type { ApprovalDescriptor, CodeDescriptor } from '../core/descriptor.js';
import { newId } from '../core/ids.js';
import type { CodeVia } from '../core/states.js';
import type { Tx, UnitOfWork } from '../events/outbox.js';
import { topics } from '../events/topics.js';
import type { Cipher } from '../security/cipher.js';
import { dialectOf } from '../store/db.js';
import { PENDING } from '../store/literals.js';
import type { AssistanceRequestsTable, CodeSubmissionsTable, Database, SubmissionVerdict } from '../store/schema.js';
import { type AssistanceRequest, toRequest } from './request.js';
import { assistanceView } from './view.js';

/*
 * THE owner of `assistance_requests` and `code_submissions`: every write to either table is a
 * compare-and-set in this file (`toRequest` in request.ts is the one place a stored descriptor is parsed).
 * Callers pass their transaction and unit of work, so a request's change commits together with the
 * session's and the audit entry, and its events and wake-ups go out only after the commit.
 */

type Db = Kysely<Database>;

/** The context bound into an in-flight code's ciphertext: it only decrypts for this request. */
const codeContext = (requestId: string) => `${requestId}:code`;

/** Opens a pending request with its `assistance_required` event (the unique index allows one per account). */
export async function openRequest(
  trx: Tx,
  uow: UnitOfWork,
  input: {
    orgId: string;
    accountId: string;
    sessionId: string;
    type: AssistanceRequestsTable['type'];
    descriptor: CodeDescriptor | ApprovalDescriptor;
    maxAttempts: number;
    now: number;
    expiresAt: number;
  },
): Promise<AssistanceRequest> {
  const row: AssistanceRequestsTable = {
    id: newId('asr', input.now),
    org_id: input.orgId,
    account_id: input.accountId,
    session_id: input.sessionId,
    type: input.type,
    state: 'pending',
    descriptor: JSON.stringify(input.descriptor),
    attempts: 0,
    resends: 0,
    max_attempts: input.maxAttempts,
    last_error: null,
    code_enc: null,
    code_submitted_at: null,
    code_via: null,
    created_at: input.now,
    expires_at: input.expiresAt,
    resolved_at: null,
    resolution_via: null,
    resolution_reason: null,
    submission_id: null,
  };
  await trx.insertInto('assistance_requests').values(row).execute();
  const request = toRequest(row);
  uow.emit({
    orgId: input.orgId,
    accountId: input.accountId,
    type: 'assistance_required',
    data: assistanceView(request),
  });
  return request;
}

/**
 * Stores a validated code on a pending request and records the submission: a compare-and-set
 * (pending, no code in flight, before the deadline), the ciphertext bound to the request, and the
 * wake-up of the waiting login. Null when another code won the race or the request closed.
 */
export async function storeCode(
  trx: Tx,
  uow: UnitOfWork,
  cipher: Cipher,
  input: {
    request: Pick<AssistanceRequest, 'id' | 'org_id' | 'account_id'>;
    code: string;
    via: CodeVia;
    actor: { type: CodeSubmissionsTable['actor_type']; id: string | null };
    now: number;
  },
): Promise<{ submissionId: string } | null> {
  const { request, now } = input;
  const submissionId = newId('sub', now);
  const result = await trx
    .updateTable('assistance_requests')
    .set({
      code_enc: cipher.encrypt(input.code, codeContext(request.id)),
      code_submitted_at: now,
      code_via: input.via,
      submission_id: submissionId,
    })
    .where('id', '=', request.id)
    .where('state', '=', 'pending')
    .where('code_submitted_at', 'is', null)
    .where('expires_at', '>', now)
    .executeTakeFirst();
  if (Number(result.numUpdatedRows) !== 1) return null;
  await trx
    .insertInto('code_submissions')
    .values({
      id: submissionId,
      org_id: request.org_id,
      account_id: request.account_id,
      request_id: request.id,
      via: input.via,
      actor_type: input.actor.type,
      actor_id: input.actor.id,
      verdict: 'pending',
      submitted_at: now,
      judged_at: null,
    })
    .execute();
  uow.wake(topics.codeSubmitted(request.id));
  uow.touch(request.account_id);
  return { submissionId };
}

/** A code taken off its request for the bank, with where it came from. */
export interface TakenCode {
  code: string;
  via: CodeVia | null;
  submissionId: string | null;
}

/**
 * PostgreSQL takes the code in one round trip: read the row and, when it holds a code, wipe it with
 * a compare-and-set on the ciphertext, in one statement. Of two takers the second waits for the
 * first's row lock, re-checks `code_enc = cur.code_enc` on the wiped row and takes nothing; a
 * request closed meanwhile (state no longer pending, code wiped) yields nothing either.
 */
const TAKE_IN_ONE = `with cur as (
  select state, code_enc, code_via, submission_id from assistance_requests where id = $1
), wiped as (
  update assistance_requests a set code_enc = null from cur
  where a.id = $1 and a.state = 'pending' and cur.state = 'pending' and a.code_enc = cur.code_enc
  returning a.id
)
select cur.state, cur.code_enc, cur.code_via, cur.submission_id, exists (select 1 from wiped) as took from cur`;

interface TakeRow {
  state: string;
  code_enc: string | null;
  code_via: string | null;
  submission_id: string | null;
  took: boolean;
}

/**
 * Takes the submitted code and wipes it from the row: the ciphertext lives in the store only between
 * submission and hand-off. Says whether there is a code, none yet, or the request closed; the wipe
 * is a compare-and-set on the ciphertext itself, so of two takers only one gets the code, and a
 * withdrawn request never yields one. One statement on PostgreSQL; on SQLite (one process, a local
 * file) a read, then the compare-and-set (RETURNING there shows only the wiped value).
 */
export async function takeCode(db: Db, cipher: Cipher, requestId: string): Promise<TakenCode | 'none' | 'closed'> {
  const row = dialectOf(db) === 'postgres' ? await takeInOne(db, requestId) : await readThenWipe(db, requestId);
  if (row?.state !== 'pending') return 'closed';
  if (!row.code_enc || !row.took) return 'none';
  return {
    code: cipher.decrypt(row.code_enc, codeContext(requestId)),
    via: (row.code_via as CodeVia | null) ?? null,
    submissionId: row.submission_id,
  };
}

async function takeInOne(db: Db, requestId: string): Promise<TakeRow | undefined> {
  const { rows } = await db.executeQuery<TakeRow>(CompiledQuery.raw(TAKE_IN_ONE, [requestId]));
  return rows[0];
}

async function readThenWipe(db: Db, requestId: string): Promise<TakeRow | undefined> {
  const row = await db
    .selectFrom('assistance_requests')
    .select(['state', 'code_enc', 'code_via', 'submission_id'])
    .where('id', '=', requestId)
    .executeTakeFirst();
  if (row?.state !== 'pending' || !row.code_enc) return row && { ...row, took: false };
  const wiped = await db
    .updateTable('assistance_requests')
    .set({ code_enc: null })
    .where('id', '=', requestId)
    .where('code_enc', '=', row.code_enc)
    .executeTakeFirst();
  return { ...row, took: Number(wiped.numUpdatedRows) === 1 };
}

async function judgeSubmission(trx: Tx, submissionId: string | null, verdict: SubmissionVerdict, at: number) {
  if (submissionId === null) return;
  await trx
    .updateTable('code_submissions')
    .set({ verdict, judged_at: at })
    .where('id', '=', submissionId)
    .where('verdict', '=', 'pending')
    .execute();
}

/** What a recorded rejection left: the request still open for another code, or closed. */
export type RejectionResult = 'retry' | 'exhausted' | 'withdrawn';

/**
 * The bank refused a code: the submission is `rejected`, the request counts the attempt and takes a
 * new code, or closes (`attempts_exhausted`) at its limit. `withdrawn` when it had closed meanwhile.
 */
export async function recordRejection(
  trx: Tx,
  uow: UnitOfWork,
  request: AssistanceRequest,
  taken: Pick<TakenCode, 'via' | 'submissionId'>,
  at: number,
): Promise<RejectionResult> {
  const updated = await trx
    .updateTable('assistance_requests')
    .set((eb) => ({
      attempts: eb('attempts', '+', 1),
      last_error: 'rejected',
      code_submitted_at: null,
      submission_id: null,
    }))
    .where('id', '=', request.id)
    .where('state', '=', 'pending')
    .returning(['attempts', 'max_attempts'])
    .executeTakeFirst();
  if (!updated) return 'withdrawn';
  await judgeSubmission(trx, taken.submissionId, 'rejected', at);
  uow.wake(topics.verdict(request.id));
  uow.touch(request.account_id);
  if (updated.attempts < updated.max_attempts) return 'retry';
  await trx
    .updateTable('assistance_requests')
    .set({ state: 'cancelled', resolved_at: at, resolution_via: taken.via, resolution_reason: 'attempts_exhausted' })
    .where('id', '=', request.id)
    .execute();
  uow.emit({
    orgId: request.org_id,
    accountId: request.account_id,
    type: 'assistance_cancelled',
    data: { id: request.id, reason: 'attempts_exhausted' },
  });
  return 'exhausted';
}

/**
 * The bank let the login continue (a code accepted, an approval given): the request is fulfilled
 * (compare-and-set on pending) with its event, its submission `accepted`, and the submitter's
 * verdict wait woken. False when the request was closed meanwhile (withdrawn).
 */
export async function fulfilRequest(
  trx: Tx,
  uow: UnitOfWork,
  request: Pick<AssistanceRequest, 'id' | 'org_id' | 'account_id'>,
  outcome: { via: CodeVia | null; submissionId: string | null; reason: 'accepted' | 'approved'; at: number },
): Promise<boolean> {
  const fulfilled = await trx
    .updateTable('assistance_requests')
    .set({
      state: 'fulfilled',
      code_submitted_at: null,
      submission_id: null,
      resolved_at: outcome.at,
      resolution_via: outcome.via,
      resolution_reason: outcome.reason,
    })
    .where('id', '=', request.id)
    .where('state', '=', 'pending')
    .executeTakeFirst();
  if (Number(fulfilled.numUpdatedRows) !== 1) return false;
  await judgeSubmission(trx, outcome.submissionId, 'accepted', outcome.at);
  uow.emit({
    orgId: request.org_id,
    accountId: request.account_id,
    type: 'assistance_fulfilled',
    data: { id: request.id, reason: outcome.reason, via: outcome.via },
  });
  uow.wake(topics.verdict(request.id));
  uow.touch(request.account_id);
  return true;
}

/** How a request closes without an accepted code. */
export interface Closing {
  state: 'cancelled' | 'expired';
  /** `deadline`, `bank_expired`, `connector_error`, `connector_timeout`, or the session's ending. */
  reason: string;
  at: number;
  /** Only while no code waits to be taken (the deadline passing must not swallow a code that just arrived). */
  onlyWithoutCode?: boolean;
}

/**
 * Closes a still-pending request with its event: its code (if any) is wiped and its in-flight
 * submission, if any, reads `withdrawn`. False when it was no longer pending (or a code had arrived,
 * with `onlyWithoutCode`).
 */
export async function closeRequest(
  trx: Tx,
  uow: UnitOfWork,
  request: Pick<AssistanceRequest, 'id' | 'org_id' | 'account_id'>,
  close: Closing,
): Promise<boolean> {
  let update = trx
    .updateTable('assistance_requests')
    .set({
      state: close.state,
      code_enc: null,
      code_submitted_at: null,
      submission_id: null,
      resolved_at: close.at,
      resolution_reason: close.reason,
    })
    .where('id', '=', request.id)
    .where('state', '=', 'pending');
  if (close.onlyWithoutCode) update = update.where('code_enc', 'is', null);
  const closed = await update.returning('id').executeTakeFirst();
  if (!closed) return false;
  await withdrawSubmissions(trx, [request.id], close.at);
  uow.emit({
    orgId: request.org_id,
    accountId: request.account_id,
    type: close.state === 'expired' ? 'assistance_expired' : 'assistance_cancelled',
    data: { id: request.id, reason: close.reason },
  });
  uow.wake(topics.verdict(request.id));
  uow.touch(request.account_id);
  return true;
}

/** The session ended: its pending request (if any) is cancelled with the session's reason. */
export async function cancelForSession(
  trx: Tx,
  uow: UnitOfWork,
  session: { id: string; org_id: string; account_id: string },
  reason: string,
  at: number,
): Promise<void> {
  const open = await trx
    .updateTable('assistance_requests')
    .set({
      state: 'cancelled',
      resolved_at: at,
      resolution_reason: reason,
      code_enc: null,
      code_submitted_at: null,
      submission_id: null,
    })
    .where('session_id', '=', session.id)
    .where('state', '=', PENDING)
    .returning('id')
    .execute();
  await withdrawSubmissions(
    trx,
    open.map((r) => r.id),
    at,
  );
  for (const request of open) {
    uow.emit({
      orgId: session.org_id,
      accountId: session.account_id,
      type: 'assistance_cancelled',
      data: { id: request.id, reason },
    });
    uow.wake(topics.verdict(request.id));
  }
}

/** Submissions still waiting for a verdict when their request closed never get one: `withdrawn`. */
async function withdrawSubmissions(trx: Tx, requestIds: string[], at: number): Promise<void> {
  if (requestIds.length === 0) return;
  await trx
    .updateTable('code_submissions')
    .set({ verdict: 'withdrawn', judged_at: at })
    .where('request_id', 'in', requestIds)
    .where('verdict', '=', 'pending')
    .execute();
}

/** Counts a new code the bank was asked to send, with its event; null when the request closed. */
export async function countResend(trx: Tx, uow: UnitOfWork, request: AssistanceRequest): Promise<number | null> {
  const updated = await trx
    .updateTable('assistance_requests')
    .set((eb) => ({ resends: eb('resends', '+', 1) }))
    .where('id', '=', request.id)
    .where('state', '=', 'pending')
    .returning('resends')
    .executeTakeFirst();
  if (!updated) return null;
  uow.emit({
    orgId: request.org_id,
    accountId: request.account_id,
    type: 'assistance_resent',
    data: { id: request.id, resends: updated.resends },
  });
  return updated.resends;
}

/** Removes an account's requests with the account (children first: SQLite enforces the keys). */
export async function deleteRequestsOf(trx: Tx, accountId: string): Promise<void> {
  await trx.deleteFrom('code_submissions').where('account_id', '=', accountId).execute();
  await trx.deleteFrom('assistance_requests').where('account_id', '=', accountId).execute();
}
