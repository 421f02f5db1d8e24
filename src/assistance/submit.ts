import type { Kysely } from 'kysely';
import { type Actor, recordAudit } from '../audit/repo.js';
import { checkCode } from '../core/descriptor.js';
import type { CodeVia } from '../core/states.js';
import type { Clock } from '../core/time.js';
import type { Bus } from '../events/bus.js';
import type { Transact } from '../events/outbox.js';
import { topics } from '../events/topics.js';
import { waitFor } from '../events/wait.js';
import type { Cipher } from '../security/cipher.js';
import type { RateLimits } from '../security/rate-limits.js';
import type { Database, SubmissionVerdict } from '../store/schema.js';
import { findPendingRequest, findRequest, findSubmission } from './reads.js';
import type { AssistanceRequest } from './request.js';
import { storeCode } from './requests.js';

/** Who hands a code in: every way a code arrives passes its own, and nobody builds one it does not have. */
export interface CodeSource {
  via: CodeVia;
  orgId: string;
  actor: Actor;
}

/** Which request a code is for: the account's pending one, checked against `requestId` when given. */
export interface CodeTarget {
  accountId: string;
  requestId?: string;
}

/**
 * Why a code was not handed to the login (each is audited):
 * - `no_pending`: the account has no pending request whose deadline has not passed;
 * - `stale`: `requestId` names another request than the pending one, or it closed meanwhile;
 * - `approval`: the pending request waits for an approval in the bank's app and takes no code;
 * - `session_lost`: the login behind the request stopped (its worker died) and can take no code;
 * - `format`: the code does not fit the descriptor (`detail` says how);
 * - `in_flight`: the bank is still judging an earlier code for this request;
 * - `rate_limited`: the account's codes for this minute reached the bank, or this sender's refused
 *   submissions used up its own budget (`retryAfterMs` says when to try again).
 */
export type SubmitReason =
  | 'no_pending'
  | 'stale'
  | 'approval'
  | 'session_lost'
  | 'format'
  | 'in_flight'
  | 'rate_limited';

export type SubmitResult =
  | { ok: true; requestId: string; submissionId: string }
  | {
      ok: false;
      reason: SubmitReason;
      message: string;
      requestId: string | null;
      detail?: string;
      retryAfterMs?: number;
    };

/**
 * The code budget (OTPILOT_CODE_RATE_LIMIT per minute), counted in the store so every path and
 * process shares it. Two counts: codes handed to the bank, per account (what protects the bank), and
 * refused submissions, per sender and account (so a sender that keeps sending malformed or stale
 * codes spends its own budget, never the account's). TOTP, computed by otpilot itself, is not counted.
 */
export interface CodeLimit {
  limits: RateLimits;
  perMinute: number;
}

export interface SubmitDeps {
  db: Kysely<Database>;
  transact: Transact;
  cipher: Cipher;
  clock: Clock;
  codeLimit: CodeLimit;
}

const MINUTE = 60_000;

const REFUSALS: Record<SubmitReason, string> = {
  no_pending: 'this account has no pending assistance request',
  stale: 'the request is no longer the pending one',
  approval: "this request waits for the login to be approved in the bank's app; it takes no code (type approval)",
  session_lost: 'the login waiting for this code stopped (its worker was lost); a new login will ask again',
  format: 'the code does not fit the request',
  in_flight: 'the bank is still judging an earlier code for this request',
  rate_limited: 'too many codes for this account this minute',
};

/**
 * Hands a code to the login waiting on the account: checks it against the pending request, then
 * stores it (compare-and-set) with its audit entry and the login's wake-up in one transaction. The
 * one entry for every source: dashboard, API, SMS relay, widget, reauthorisation commit and TOTP.
 */
export async function submitCode(
  deps: SubmitDeps,
  source: CodeSource,
  target: CodeTarget,
  rawCode: string,
): Promise<SubmitResult> {
  const { db, clock } = deps;
  const counted = source.via !== 'totp';
  const { limits, perMinute } = deps.codeLimit;
  const senderKey = `code-sender:${source.orgId}:${source.actor.type}:${source.actor.id ?? '-'}:${target.accountId}`;
  const limited = async (requestId: string | null, retryAfterMs: number): Promise<SubmitResult> => {
    await audit('rate_limited', requestId);
    return { ok: false, reason: 'rate_limited', message: REFUSALS.rate_limited, requestId, retryAfterMs };
  };
  const audit = (outcome: string, requestId: string | null) =>
    recordAudit(
      db,
      {
        orgId: source.orgId,
        actor: source.actor,
        action: 'otp.submit',
        accountId: target.accountId,
        targetId: requestId,
        outcome,
        details: { via: source.via },
      },
      clock(),
    );
  const refuse = async (
    reason: SubmitReason,
    requestId: string | null,
    message = REFUSALS[reason],
    detail?: string,
  ): Promise<SubmitResult> => {
    // A refusal is the sender's to pay for: past its budget it is told to slow down instead.
    if (counted) {
      const spent = await limits.hit(senderKey, perMinute, MINUTE);
      if (!spent.allowed) return limited(requestId, spent.retryAfterMs);
    }
    await audit(AUDIT_OUTCOME[reason], requestId);
    return { ok: false, reason, message, requestId, ...(detail !== undefined ? { detail } : {}) };
  };

  if (counted) {
    const sender = await limits.peek(senderKey, perMinute, MINUTE);
    if (!sender.allowed) return limited(target.requestId ?? null, sender.retryAfterMs);
  }
  const now = clock();
  const pending = await findPendingRequest(db, target.accountId);
  if (!pending || pending.expires_at <= now) return refuse('no_pending', pending?.id ?? target.requestId ?? null);
  if (target.requestId !== undefined && target.requestId !== pending.id) {
    return refuse('stale', target.requestId, `request ${target.requestId} is not the pending one (${pending.id})`);
  }
  if (pending.type === 'approval') return refuse('approval', pending.id);
  if (!(await sessionAlive(db, pending, now))) return refuse('session_lost', pending.id);
  const check = checkCode(rawCode, pending.descriptor);
  if (!check.ok) return refuse('format', pending.id, `${REFUSALS.format}: ${check.reason}`, check.reason);
  if (pending.code_submitted_at !== null) return refuse('in_flight', pending.id);
  if (counted) {
    const account = await limits.hit(`code:${source.orgId}:${target.accountId}`, perMinute, MINUTE);
    if (!account.allowed) return limited(pending.id, account.retryAfterMs);
  }

  const stored = await deps.transact(async (trx, uow) => {
    const result = await storeCode(trx, uow, deps.cipher, {
      request: pending,
      code: check.code,
      via: source.via,
      actor: source.actor,
      now,
    });
    if (!result) return null;
    await recordAudit(
      trx,
      {
        orgId: source.orgId,
        actor: source.actor,
        action: 'otp.submit',
        accountId: target.accountId,
        targetId: pending.id,
        outcome: 'submitted',
        details: { via: source.via },
      },
      now,
    );
    return result;
  });
  if (stored) return { ok: true, requestId: pending.id, submissionId: stored.submissionId };
  // Lost a race: another code is now with the bank, or the request closed.
  const current = await findRequest(db, pending.id);
  return current?.state === 'pending' ? refuse('in_flight', pending.id) : refuse('stale', pending.id);
}

const AUDIT_OUTCOME: Record<SubmitReason, string> = {
  no_pending: 'no_pending_request',
  stale: 'stale_request',
  approval: 'approval_request',
  session_lost: 'session_lost',
  format: 'code_format',
  in_flight: 'code_in_flight',
  rate_limited: 'rate_limited',
};

/**
 * Whether the login behind a request can still take a code: its session is held by a worker whose
 * lease has not lapsed. A dead worker's request stays pending until recovery ends it; a code posted
 * meanwhile is refused at once instead of waiting for a verdict that cannot come.
 */
async function sessionAlive(db: Kysely<Database>, request: AssistanceRequest, now: number): Promise<boolean> {
  const session = await db
    .selectFrom('sessions')
    .select(['state', 'lease_expires_at'])
    .where('id', '=', request.session_id)
    .executeTakeFirst();
  if (session?.state !== 'awaiting_assistance' && session?.state !== 'running') return false;
  return session.lease_expires_at !== null && session.lease_expires_at >= now;
}

/** What became of a submitted code: the bank's verdict, or `pending` when none came within the wait. */
export type CodeOutcome = Exclude<SubmissionVerdict, 'pending'> | 'pending';

/**
 * Waits up to `timeoutMs` (wall time) for the recorded verdict of one submission, woken by the
 * request's verdict topic. Returns the outcome and the request as it then stands.
 */
export async function awaitVerdict(
  deps: { db: Kysely<Database>; bus: Bus; pollMs: number; signal?: AbortSignal },
  submitted: { requestId: string; submissionId: string },
  timeoutMs: number,
): Promise<{ outcome: CodeOutcome; request: AssistanceRequest }> {
  const monotonic = () => performance.now();
  const waited = await waitFor({
    bus: deps.bus,
    topic: topics.verdict(submitted.requestId),
    read: () => findSubmission(deps.db, submitted.submissionId),
    done: (submission) => submission === undefined || submission.verdict !== 'pending',
    until: monotonic() + timeoutMs,
    clock: monotonic,
    pollMs: deps.pollMs,
    ...(deps.signal ? { signal: deps.signal } : {}),
  });
  const request = await findRequest(deps.db, submitted.requestId);
  // The request (and its submissions) vanish only with their account.
  if (!request || !waited.value) throw new Error(`request ${submitted.requestId} vanished`);
  return { outcome: waited.value.verdict, request };
}
