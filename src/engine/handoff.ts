import type { AssistanceWait } from '../assistance/reads.js';
import type { AssistanceRequest } from '../assistance/request.js';
import {
  type Closing,
  closeRequest,
  countResend,
  fulfilRequest,
  openRequest,
  recordRejection,
  type TakenCode,
  takeCode,
} from '../assistance/requests.js';
import type { SubmitDeps } from '../assistance/submit.js';
import { type CodeRequest, type CodeRequestOptions, type CodeVerdict, ENGINE_STOP } from '../connectors/sdk.js';
import type { ApprovalDescriptor, CodeChannel, CodeDescriptor } from '../core/descriptor.js';
import type { Bus } from '../events/bus.js';
import { topics } from '../events/topics.js';
import { waitFor } from '../events/wait.js';
import type { Waiters } from '../events/waiters.js';
import { type HeldSession, holdSession } from '../sessions/transitions.js';
import type { Db } from '../store/db.js';
import { ConnectorTimeout, DeadlinePassed, type Watchdog } from './watchdog.js';

/**
 * Why a request ended without an accepted code; the runner turns it into the session's outcome.
 * `code_required`: the account logs in without assistance; `no_code_source`: nothing could give a
 * code now and the account says to fail rather than wait (`on_no_code_source: fail`).
 */
export type AssistanceEndReason = 'expired' | 'attempts_exhausted' | 'withdrawn' | 'code_required' | 'no_code_source';

/** Thrown out of `requestCode` (through the connector, which must let it pass). */
export class AssistanceEnded extends Error {
  readonly [ENGINE_STOP] = true;
  readonly reason: AssistanceEndReason;
  constructor(reason: AssistanceEndReason, message: string) {
    super(message);
    this.name = 'AssistanceEnded';
    this.reason = reason;
  }
}

/** The most attempts otpilot ever spends on one request: banks lock logins after a few wrong codes. */
export const MAX_ATTEMPTS = 3;

/** The least time the bank gets to judge a code that arrived before the deadline, ms. */
export const JUDGE_GRACE_MS = 5_000;

/** What the hand-off needs: code submission's store access (TOTP submits through it), the bus and the fallback poll. */
export interface HandoffDeps extends SubmitDeps {
  bus: Bus;
  /** The process's waits on requests, with their one batched fallback check. */
  waiters: Waiters<AssistanceWait>;
  /**
   * Where a woken login takes its code: on PostgreSQL a connection of its own (`Store.control`, shared
   * with lease heartbeats), so the hand-off does not queue behind a pool busy with other logins' work.
   */
  control: Db;
  /** First fallback check behind the wake-ups, ms (it then backs off). */
  pollMs: number;
  /** A connector call's own limit, ms (the watchdog's `callMs`): the request's deadline applies when nearer. */
  callLimitMs: number;
}

/** The login being helped, as the runner describes it. */
export interface HandoffSession extends HeldSession {
  orgId: string;
  accountId: string;
  loginMode: 'simple' | 'assisted';
  /** How long a request stays pending, ms. */
  assistTimeoutMs: number;
  signal: AbortSignal;
  /** Records a stage (kept in memory, written with every hold). */
  stage(name: string): void;
  /** Ask for a new code after this long without one, ms (null: never). */
  resendAfterMs: number | null;
  /** New codes per request at most. */
  maxResends: number;
  /** `fail`: a code request that nothing can answer fails at once instead of waiting for its deadline. */
  onNoCodeSource: 'wait' | 'fail';
  /** Whether anything (a present operator, an SMS relay) could answer a code request of this channel now. */
  hasCodeSource(channel: CodeChannel | null): Promise<boolean>;
  /** Answers the request with an authenticator code when the account has a TOTP secret; false when it has none. */
  answerWithTotp(request: AssistanceRequest): Promise<boolean>;
  /** Whether the account can answer authenticator prompts itself (a stored TOTP secret). */
  hasTotp(): Promise<boolean>;
  watchdog: Watchdog;
}

/**
 * Opens a pending request (a code's or an approval's) and holds the session in
 * `awaiting_assistance`, with its `assistance_required` event, in one transaction.
 */
export async function openAssistance(
  deps: HandoffDeps,
  session: HandoffSession,
  fields: { type: AssistanceRequest['type']; descriptor: CodeDescriptor | ApprovalDescriptor; maxAttempts: number },
): Promise<AssistanceRequest> {
  const now = deps.clock();
  session.stage('awaiting_assistance');
  return deps.transact(async (trx, uow) => {
    if (!(await holdSession(trx, session, 'awaiting_assistance'))) throw lostLease();
    return openRequest(trx, uow, {
      orgId: session.orgId,
      accountId: session.accountId,
      sessionId: session.sessionId,
      ...fields,
      now,
      expiresAt: now + session.assistTimeoutMs,
    });
  });
}

/** The bank let the login continue: the request is fulfilled and the session runs again, together. */
export async function fulfil(
  deps: HandoffDeps,
  session: HandoffSession,
  request: AssistanceRequest,
  outcome: { via: TakenCode['via']; submissionId: string | null; reason: 'accepted' | 'approved' },
): Promise<void> {
  const at = deps.clock();
  await deps.transact(async (trx, uow) => {
    if (!(await holdSession(trx, session, 'running'))) throw lostLease();
    if (!(await fulfilRequest(trx, uow, request, { ...outcome, at }))) throw withdrawn();
  });
  session.stage('assistance_fulfilled');
}

/**
 * A connector call under a request failed: closes the request with why (the bank's error, a limit
 * that passed) and rethrows. When the session itself was stopped (cancel, shutdown, lost lease), the
 * session's end closes the request with its own reason instead.
 */
export async function closeAndRethrow(
  deps: HandoffDeps,
  session: HandoffSession,
  request: AssistanceRequest,
  error: unknown,
): Promise<never> {
  const closing: Omit<Closing, 'at'> | null =
    error instanceof DeadlinePassed
      ? { state: 'expired', reason: 'deadline' }
      : error instanceof ConnectorTimeout
        ? { state: 'cancelled', reason: 'connector_timeout' }
        : session.signal.aborted
          ? null
          : { state: 'cancelled', reason: 'connector_error' };
  if (closing) await deps.transact((trx, uow) => closeRequest(trx, uow, request, { ...closing, at: deps.clock() }));
  throw error;
}

/**
 * The code hand-off: open a pending request with its event, wait for a code, take it (wiping the
 * ciphertext), let the connector try it under the request's deadline, record the verdict; again
 * until the bank accepts, the attempts run out, or the deadline passes. Returns what `tryCode`
 * produced on acceptance.
 */
export async function requestCode<T>(
  deps: HandoffDeps,
  session: HandoffSession,
  request: CodeRequest,
  tryCode: (code: string) => Promise<CodeVerdict<T>>,
  options: CodeRequestOptions = {},
): Promise<T | undefined> {
  // An authenticator code otpilot can compute itself needs nobody, so even a `simple` login may take it.
  const selfAnswered = request.channel === 'authenticator' && (await session.hasTotp());
  if (session.loginMode === 'simple' && !selfAnswered) {
    throw new AssistanceEnded(
      'code_required',
      'the bank asked for a code and the account logs in without assistance (login_mode simple)',
    );
  }
  if (session.onNoCodeSource === 'fail' && !selfAnswered && !(await session.hasCodeSource(request.channel ?? null))) {
    throw new AssistanceEnded(
      'no_code_source',
      'the bank asked for a code and nothing could give one: no operator signed in, no SMS relay for otp_phone, no TOTP secret (on_no_code_source fail)',
    );
  }
  const row = await openAssistance(deps, session, {
    type: 'otp',
    descriptor: {
      length: request.length,
      type: request.type,
      purpose: request.purpose,
      prompt: request.prompt,
      channel: request.channel ?? null,
    },
    maxAttempts: Math.max(1, Math.min(request.max_attempts ?? MAX_ATTEMPTS, MAX_ATTEMPTS)),
  });
  if (selfAnswered) await session.answerWithTotp(row);
  const resend =
    options.resend && session.resendAfterMs !== null && session.maxResends > 0 && !selfAnswered
      ? { send: options.resend, afterMs: session.resendAfterMs, lastSentAt: row.created_at, left: session.maxResends }
      : null;

  for (;;) {
    const taken = await session.watchdog.paused(() => waitForCode(deps, session, row, resend));
    let verdict: CodeVerdict<T>;
    try {
      // The bank judges under the request's deadline; a code that arrived in time gets at least the
      // grace, so one taken at the last moment is not cut off before the bank could answer.
      const untilDeadline = Math.max(row.expires_at - deps.clock(), JUDGE_GRACE_MS);
      verdict = await session.watchdog.call('tryCode', () => tryCode(taken.code), {
        ...(untilDeadline < deps.callLimitMs ? { limitMs: untilDeadline, onLimit: () => new DeadlinePassed() } : {}),
      });
    } catch (error) {
      // Closed here, so a connector that catches the error and asks again does not find this one
      // still pending with a code "in flight".
      return closeAndRethrow(deps, session, row, error);
    }
    switch (verdict.outcome) {
      case 'accepted':
        await fulfil(deps, session, row, { via: taken.via, submissionId: taken.submissionId, reason: 'accepted' });
        return verdict.value;
      case 'rejected': {
        const at = deps.clock();
        const result = await deps.transact(async (trx, uow) => {
          if (!(await holdSession(trx, session, 'awaiting_assistance'))) throw lostLease();
          return recordRejection(trx, uow, row, taken, at);
        });
        switch (result) {
          case 'retry':
            break;
          case 'exhausted':
            throw new AssistanceEnded('attempts_exhausted', 'the bank rejected every allowed attempt');
          case 'withdrawn':
            throw withdrawn();
          default: {
            const never: never = result;
            throw new Error(`unknown rejection result ${String(never)}`);
          }
        }
        break;
      }
      default: {
        const never: never = verdict;
        throw new Error(`unknown verdict ${JSON.stringify(never)}`);
      }
    }
  }
}

const withdrawn = () => new AssistanceEnded('withdrawn', 'the request was closed while the bank judged it');
const lostLease = () => new AssistanceEnded('withdrawn', 'this worker no longer holds the session');

interface ResendPlan {
  send: () => Promise<void>;
  afterMs: number;
  lastSentAt: number;
  left: number;
}

/**
 * Waits for a submitted code and takes it; expires the request at its deadline (unless a code just
 * arrived), asks the bank for a new code when the plan says so, and stops when the request closes.
 */
async function waitForCode(
  deps: HandoffDeps,
  session: HandoffSession,
  row: AssistanceRequest,
  resend: ResendPlan | null,
): Promise<TakenCode> {
  const { clock } = deps;
  for (;;) {
    const nextResend = resend && resend.left > 0 ? resend.lastSentAt + resend.afterMs : Number.POSITIVE_INFINITY;
    const waited = await waitFor({
      bus: deps.bus,
      topic: topics.codeSubmitted(row.id),
      read: () => takeCode(deps.control, deps.cipher, row.id),
      done: (value) => value !== 'none',
      until: Math.min(row.expires_at, nextResend),
      clock,
      pollMs: deps.pollMs,
      signal: session.signal,
      batch: { waiters: deps.waiters, kind: 'code', key: row.id },
    });
    session.signal.throwIfAborted();
    if (waited.value === 'closed') throw new AssistanceEnded('withdrawn', 'the request was closed while waiting');
    if (waited.value !== 'none') return waited.value;
    if (clock() >= row.expires_at) {
      const expired = await deps.transact((trx, uow) =>
        closeRequest(trx, uow, row, { state: 'expired', reason: 'deadline', at: clock(), onlyWithoutCode: true }),
      );
      if (expired) throw new AssistanceEnded('expired', 'no code was accepted before the deadline');
      continue; // a code arrived at the last moment: take it
    }
    if (resend) await resendCode(deps, row, resend);
  }
}

/**
 * Nobody sent a code for a while: ask the bank for a new one (a lost or late SMS), count it on the
 * request and say so with an event. A bank that refuses the resend just leaves the wait as it was.
 */
async function resendCode(deps: HandoffDeps, row: AssistanceRequest, plan: ResendPlan): Promise<void> {
  plan.left--;
  plan.lastSentAt = deps.clock();
  try {
    await plan.send();
  } catch {
    plan.left = 0; // the bank would not: do not ask again for this request
    return;
  }
  await deps.transact((trx, uow) => countResend(trx, uow, row));
}
