import { setTimeout as delay } from 'node:timers/promises';
import type { TOTP } from 'otpauth';
import { assistanceView } from '../assistance/repo.js';
import { type AssistanceDeps, codeContext, storeCode } from '../assistance/service.js';
import { parseTotpSecret, totpAt } from '../automation/totp.js';
import type { CodeRequest, CodeRequestOptions, CodeVerdict } from '../connectors/sdk.js';
import { type CodeChannel, type CodeDescriptor, checkCode } from '../core/descriptor.js';
import { newId } from '../core/ids.js';
import type { Tx, UnitOfWork } from '../events/outbox.js';
import type { Db } from '../store/db.js';
import type { AssistanceRequestsTable } from '../store/schema.js';

/**
 * Why a request ended without an accepted code; the runner turns it into the session's outcome.
 * `code_required`: the account logs in without assistance; `no_code_source`: nothing could give a
 * code now and the account says to fail rather than wait (`on_no_code_source: fail`).
 */
export type AssistanceEndReason = 'expired' | 'attempts_exhausted' | 'withdrawn' | 'code_required' | 'no_code_source';

/** Thrown out of `requestCode` (through the connector, which must let it pass). */
export class AssistanceEnded extends Error {
  readonly reason: AssistanceEndReason;
  constructor(reason: AssistanceEndReason, message: string) {
    super(message);
    this.name = 'AssistanceEnded';
    this.reason = reason;
  }
}

/** The most attempts otpilot ever spends on one request: banks lock logins after a few wrong codes. */
export const MAX_ATTEMPTS = 3;

/** The hand-off needs exactly what code submission needs: the store, the bus, the cipher and a clock. */
export type HandoffDeps = AssistanceDeps;

export interface HandoffSession {
  orgId: string;
  accountId: string;
  sessionId: string;
  loginMode: 'simple' | 'assisted';
  /** How long a request stays pending, ms. */
  assistTimeoutMs: number;
  signal: AbortSignal;
  /** Records a stage; `stages()` gives them all as JSON, persisted when the wait begins. */
  stage(name: string): void;
  stages(): string;
  /** The worker's lease owner id: writes to the session are guarded by it. */
  owner: string;
  /** The account's authenticator secret, decrypted on demand (null when none is stored). */
  totpSecret(): Promise<string | null>;
  /** Ask for a new code after this long without one, ms (null: never). */
  resendAfterMs: number | null;
  /** New codes per request at most. */
  maxResends: number;
  /** `fail`: a code request that nothing can answer fails at once instead of waiting for its deadline. */
  onNoCodeSource: 'wait' | 'fail';
  /** Whether anything (a present operator, an SMS relay) could answer a code request of this channel now. */
  hasCodeSource(channel: CodeChannel | null): Promise<boolean>;
}

/** A request's resend budget while it waits: when the last code was sent, and how many resends remain. */
interface ResendPlan {
  resend: () => Promise<void>;
  afterMs: number;
  lastSentAt: number;
  left: number;
}

/**
 * Opens a pending assistance request for the session (a code's or an approval's) and holds the
 * session in `awaiting_assistance`, with its `assistance_required` event, in one transaction.
 */
export async function openRequest(
  deps: Pick<HandoffDeps, 'transact' | 'clock'>,
  session: HandoffSession,
  fields: { type: AssistanceRequestsTable['type']; descriptor: unknown; maxAttempts: number },
): Promise<AssistanceRequestsTable> {
  const now = deps.clock();
  const row: AssistanceRequestsTable = {
    id: newId('asr', now),
    org_id: session.orgId,
    account_id: session.accountId,
    session_id: session.sessionId,
    type: fields.type,
    state: 'pending',
    descriptor: JSON.stringify(fields.descriptor),
    attempts: 0,
    resends: 0,
    max_attempts: fields.maxAttempts,
    last_error: null,
    code_enc: null,
    code_submitted_at: null,
    code_via: null,
    created_at: now,
    expires_at: now + session.assistTimeoutMs,
    resolved_at: null,
    resolution_via: null,
    resolution_reason: null,
  };
  session.stage('awaiting_assistance');
  await deps.transact(async (trx, uow) => {
    await holdSession(trx, session, 'awaiting_assistance');
    await trx.insertInto('assistance_requests').values(row).execute();
    uow.emit({
      orgId: session.orgId,
      accountId: session.accountId,
      type: 'assistance_required',
      data: assistanceView(row),
    });
  });
  return row;
}

/**
 * The OTP hand-off (architecture.md): open a pending request with its event, wait event-driven for a
 * code, take it (wiping the ciphertext), let the connector try it, record the verdict.
 */
export async function requestCode(
  deps: HandoffDeps,
  session: HandoffSession,
  request: CodeRequest,
  tryCode: (code: string) => Promise<CodeVerdict>,
  options: CodeRequestOptions = {},
): Promise<void> {
  // An authenticator code otpilot can compute itself needs nobody, so even a `simple` login may take it.
  const totp = request.channel === 'authenticator' ? await loadTotp(session) : null;
  if (session.loginMode === 'simple' && !totp) {
    throw new AssistanceEnded(
      'code_required',
      'the bank asked for a code and the account logs in without assistance (login_mode simple)',
    );
  }
  if (session.onNoCodeSource === 'fail' && !totp && !(await session.hasCodeSource(request.channel ?? null))) {
    throw new AssistanceEnded(
      'no_code_source',
      'the bank asked for a code and nothing could give one: no operator signed in, no SMS relay for otp_phone, no TOTP secret (on_no_code_source fail)',
    );
  }
  const { transact, clock } = deps;
  const descriptor: CodeDescriptor = {
    length: request.length,
    type: request.type,
    purpose: request.purpose,
    prompt: request.prompt,
    channel: request.channel ?? null,
  };
  const row = await openRequest(deps, session, {
    type: 'otp',
    descriptor,
    maxAttempts: Math.max(1, Math.min(request.max_attempts ?? MAX_ATTEMPTS, MAX_ATTEMPTS)),
  });

  if (totp) await submitTotp(deps, session, row, totp);
  const resendPlan: ResendPlan | null =
    options.resend && session.resendAfterMs !== null && session.maxResends > 0 && !totp
      ? { resend: options.resend, afterMs: session.resendAfterMs, lastSentAt: row.created_at, left: session.maxResends }
      : null;

  for (;;) {
    const taken = await waitForCode(deps, row, session.signal, resendPlan);
    let verdict: CodeVerdict;
    try {
      verdict = await tryCode(taken.code);
    } catch (error) {
      // The bank call failed while judging: close the request here, so a connector that catches the
      // error and asks again does not find this one still pending with a code "in flight".
      await transact((trx, uow) =>
        closeRequest(trx, uow, row, { state: 'cancelled', reason: 'connector_error', at: clock() }),
      );
      throw error;
    }
    const judged = clock();
    switch (verdict.outcome) {
      case 'accepted':
        await transact((trx, uow) =>
          fulfillRequest(trx, uow, session, row, { via: taken.via, reason: 'accepted', at: judged }),
        );
        session.stage('assistance_fulfilled');
        return;
      case 'rejected': {
        const exhausted = await transact(async (trx, uow) => {
          await holdSession(trx, session, 'awaiting_assistance');
          const updated = await trx
            .updateTable('assistance_requests')
            .set((eb) => ({ attempts: eb('attempts', '+', 1), last_error: 'rejected', code_submitted_at: null }))
            .where('id', '=', row.id)
            .where('state', '=', 'pending')
            .returning(['attempts', 'max_attempts'])
            .executeTakeFirst();
          if (!updated) throw withdrawn();
          const done = updated.attempts >= updated.max_attempts;
          if (done) {
            await trx
              .updateTable('assistance_requests')
              .set({
                state: 'cancelled',
                resolved_at: judged,
                resolution_via: taken.via,
                resolution_reason: 'attempts_exhausted',
              })
              .where('id', '=', row.id)
              .execute();
            uow.emit({
              orgId: session.orgId,
              accountId: session.accountId,
              type: 'assistance_cancelled',
              data: { id: row.id, reason: 'attempts_exhausted' },
            });
          }
          uow.wake(`verdict:${row.id}`);
          uow.touch(session.accountId);
          return done;
        });
        if (exhausted) throw new AssistanceEnded('attempts_exhausted', 'the bank rejected every allowed attempt');
        break;
      }
      default: {
        const never: never = verdict;
        throw new Error(`unknown verdict ${JSON.stringify(never)}`);
      }
    }
  }
}

async function loadTotp(session: HandoffSession): Promise<TOTP | null> {
  const secret = await session.totpSecret();
  if (!secret) return null;
  const parsed = parseTotpSecret(secret);
  return parsed.ok ? parsed.totp : null;
}

/**
 * The TOTP path of the hand-off: otpilot computes the authenticator code (waiting for the next time
 * step when the current one is about to end) and submits it like any other code, once. If the bank
 * refuses it, the request stays pending for the other paths.
 */
async function submitTotp(
  deps: HandoffDeps,
  session: HandoffSession,
  row: AssistanceRequestsTable,
  totp: TOTP,
): Promise<void> {
  const { at, code } = totpAt(totp, deps.clock());
  const wait = at - deps.clock();
  if (wait > 0) await delay(wait, undefined, { signal: session.signal });
  const check = checkCode(code, JSON.parse(row.descriptor) as CodeDescriptor);
  if (!check.ok) return; // the bank wants another format than this secret makes: leave it to a person
  await storeCode(deps, {
    orgId: session.orgId,
    actor: { type: 'system', id: null },
    accountId: session.accountId,
    requestId: row.id,
    code: check.code,
    via: 'totp',
  });
}

/**
 * The bank let the login continue (a code accepted, an approval given): the request is fulfilled
 * (compare-and-set on pending, else the request was withdrawn meanwhile), the session runs again,
 * the event is written and the submitter's verdict wait wakes.
 */
export async function fulfillRequest(
  trx: Tx,
  uow: UnitOfWork,
  session: HandoffSession,
  row: Pick<AssistanceRequestsTable, 'id'>,
  outcome: { via: string | null; reason: 'accepted' | 'approved'; at: number },
): Promise<void> {
  await holdSession(trx, session, 'running');
  const fulfilled = await trx
    .updateTable('assistance_requests')
    .set({
      state: 'fulfilled',
      code_submitted_at: null,
      resolved_at: outcome.at,
      resolution_via: outcome.via,
      resolution_reason: outcome.reason,
    })
    .where('id', '=', row.id)
    .where('state', '=', 'pending')
    .executeTakeFirst();
  if (Number(fulfilled.numUpdatedRows) !== 1) {
    throw new AssistanceEnded('withdrawn', 'the request was closed while the bank judged it');
  }
  uow.emit({
    orgId: session.orgId,
    accountId: session.accountId,
    type: 'assistance_fulfilled',
    data: { id: row.id, reason: outcome.reason, via: outcome.via },
  });
  uow.wake(`verdict:${row.id}`);
}

/**
 * Closes a still-pending request with its event and the verdict wake-up, in the caller's transaction.
 * False when it was no longer pending (or, with `onlyWithoutCode`, a code had just arrived).
 */
export async function closeRequest(
  trx: Tx,
  uow: UnitOfWork,
  row: AssistanceRequestsTable,
  close: { state: 'cancelled' | 'expired'; reason: string; at: number; onlyWithoutCode?: boolean },
): Promise<boolean> {
  let update = trx
    .updateTable('assistance_requests')
    .set({ state: close.state, code_submitted_at: null, resolved_at: close.at, resolution_reason: close.reason })
    .where('id', '=', row.id)
    .where('state', '=', 'pending');
  if (close.onlyWithoutCode) update = update.where('code_enc', 'is', null);
  const result = await update.executeTakeFirst();
  if (Number(result.numUpdatedRows) !== 1) return false;
  uow.emit({
    orgId: row.org_id,
    accountId: row.account_id,
    type: close.state === 'expired' ? 'assistance_expired' : 'assistance_cancelled',
    data: { id: row.id, reason: close.reason },
  });
  uow.wake(`verdict:${row.id}`);
  return true;
}

const withdrawn = () => new AssistanceEnded('withdrawn', 'the request was closed while the bank judged the code');

/**
 * Sets the session's state, but only while this worker still holds its lease: a worker whose session
 * was declared lost (and its request cancelled) must not bring it back to life.
 */
export async function holdSession(
  trx: Tx,
  session: HandoffSession,
  state: 'running' | 'awaiting_assistance',
): Promise<void> {
  const result = await trx
    .updateTable('sessions')
    .set({ state, stages: session.stages() })
    .where('id', '=', session.sessionId)
    .where('lease_owner', '=', session.owner)
    .where('state', 'in', ['running', 'awaiting_assistance'])
    .executeTakeFirst();
  if (Number(result.numUpdatedRows) !== 1)
    throw new AssistanceEnded('withdrawn', 'this worker no longer holds the session');
}

/** Waits for a submitted code: woken by the bus, with a fallback poll; expires the request at its deadline. */
async function waitForCode(
  deps: HandoffDeps,
  row: AssistanceRequestsTable,
  signal: AbortSignal,
  resend: ResendPlan | null,
): Promise<{ code: string; via: string | null }> {
  const { db, bus, cipher, clock, transact } = deps;
  for (;;) {
    signal.throwIfAborted();
    const now = clock();
    const remaining = row.expires_at - now;
    const untilResend = resend && resend.left > 0 ? resend.lastSentAt + resend.afterMs - now : Number.POSITIVE_INFINITY;
    // Registered before the check, so a code stored between the check and the wait still wakes us.
    const waiter = bus.waiter(`asr:${row.id}`, Math.max(0, Math.min(remaining, deps.pollMs, untilResend)), signal);
    const taken = await takeCode(db, row.id);
    if (taken) {
      waiter.cancel();
      return { code: cipher.decrypt(taken.code_enc, codeContext(row.id)), via: taken.code_via };
    }
    if (remaining <= 0) {
      waiter.cancel();
      const expired = await transact((trx, uow) =>
        closeRequest(trx, uow, row, { state: 'expired', reason: 'deadline', at: clock(), onlyWithoutCode: true }),
      );
      if (expired) throw new AssistanceEnded('expired', 'no code was accepted before the deadline');
      continue; // a code arrived at the last moment: take it
    }
    if (resend && untilResend <= 0) {
      waiter.cancel();
      await resendCode(deps, row, resend);
      continue;
    }
    const woken = await waiter.promise;
    if (!woken) {
      const current = await db
        .selectFrom('assistance_requests')
        .select('state')
        .where('id', '=', row.id)
        .executeTakeFirst();
      if (current?.state !== 'pending') throw new AssistanceEnded('withdrawn', 'the request was closed while waiting');
    }
  }
}

/**
 * Nobody sent a code for a while: ask the bank for a new one (a lost or late SMS), count it on the
 * request and say so with an event. A bank that refuses the resend just leaves the wait as it was.
 */
async function resendCode(deps: HandoffDeps, row: AssistanceRequestsTable, plan: ResendPlan): Promise<void> {
  plan.left--;
  plan.lastSentAt = deps.clock();
  try {
    await plan.resend();
  } catch {
    plan.left = 0; // the bank would not: do not ask again for this request
    return;
  }
  await deps.transact(async (trx, uow) => {
    const updated = await trx
      .updateTable('assistance_requests')
      .set((eb) => ({ resends: eb('resends', '+', 1) }))
      .where('id', '=', row.id)
      .where('state', '=', 'pending')
      .returning('resends')
      .executeTakeFirst();
    if (!updated) return;
    uow.emit({
      orgId: row.org_id,
      accountId: row.account_id,
      type: 'assistance_resent',
      data: { id: row.id, resends: updated.resends },
    });
  });
}

/**
 * Takes the submitted code and wipes it from the row: the ciphertext lives in the store only between
 * submission and hand-off. The wipe is a compare-and-set on the ciphertext itself, so of two takers
 * only one gets the code (RETURNING would show the wiped value, hence the read first).
 */
async function takeCode(db: Db, requestId: string): Promise<{ code_enc: string; code_via: string | null } | null> {
  const row = await db
    .selectFrom('assistance_requests')
    .select(['code_enc', 'code_via'])
    .where('id', '=', requestId)
    .where('state', '=', 'pending')
    .where('code_enc', 'is not', null)
    .executeTakeFirst();
  if (!row?.code_enc) return null;
  const wiped = await db
    .updateTable('assistance_requests')
    .set({ code_enc: null })
    .where('id', '=', requestId)
    .where('code_enc', '=', row.code_enc)
    .executeTakeFirst();
  return Number(wiped.numUpdatedRows) === 1 ? { code_enc: row.code_enc, code_via: row.code_via } : null;
}
