import { accountFor } from '../accounts/access.js';
import { type Actor, recordAudit } from '../audit/repo.js';
import type { CodeDescriptor } from '../core/descriptor.js';
import { checkCode } from '../core/descriptor.js';
import { fail, ok, type Result } from '../core/result.js';
import type { CodeVia } from '../core/states.js';
import type { Clock } from '../core/time.js';
import type { Bus } from '../events/bus.js';
import type { Transact } from '../events/outbox.js';
import type { Principal } from '../keys/principal.js';
import type { Cipher } from '../security/cipher.js';
import type { Db } from '../store/db.js';
import { type AssistanceView, assistanceView, findPendingRequest, findRequest } from './repo.js';

export interface SubmitInput {
  code: string;
  /** When given, must be the pending request's id (else STALE_REQUEST). */
  requestId?: string;
  via: CodeVia;
}

export interface Submitted {
  submitted: true;
  request_id: string;
  /** `attempts` when the code was stored: a later, higher count means the bank rejected it. */
  attemptsBefore: number;
}

/** What became of a submitted code after waiting for the bank. */
export type CodeOutcome = 'accepted' | 'rejected' | 'pending';

export interface AssistanceService {
  submitCode(principal: Principal, accountId: string, input: SubmitInput): Promise<Result<Submitted>>;
  /** Waits up to `timeoutMs` for the bank's verdict on a submitted code. */
  awaitOutcome(submitted: Submitted, timeoutMs: number): Promise<{ outcome: CodeOutcome; request: AssistanceView }>;
}

export interface AssistanceDeps {
  db: Db;
  transact: Transact;
  bus: Bus;
  cipher: Cipher;
  clock: Clock;
  /** Fallback poll behind the verdict wake-up, ms. */
  pollMs: number;
}

/** The context bound into an in-flight code's ciphertext: it only decrypts for this request. */
export const codeContext = (requestId: string) => `${requestId}:code`;

/**
 * Stores a validated code on a pending request: a compare-and-set (pending, no code in flight, before
 * the deadline), the ciphertext bound to the request, the audit entry, and the wake-up of the waiting
 * login, in one transaction. False when another code won the race or the request closed.
 */
export async function storeCode(
  deps: Pick<AssistanceDeps, 'transact' | 'cipher' | 'clock'>,
  input: { orgId: string; actor: Actor; accountId: string; requestId: string; code: string; via: CodeVia },
): Promise<boolean> {
  const now = deps.clock();
  return deps.transact(async (trx, uow) => {
    const result = await trx
      .updateTable('assistance_requests')
      .set({
        code_enc: deps.cipher.encrypt(input.code, codeContext(input.requestId)),
        code_submitted_at: now,
        code_via: input.via,
      })
      .where('id', '=', input.requestId)
      .where('state', '=', 'pending')
      .where('code_submitted_at', 'is', null)
      .where('expires_at', '>', now)
      .executeTakeFirst();
    if (Number(result.numUpdatedRows) !== 1) return false; // the caller audits the refusal it reports
    await recordAudit(
      trx,
      {
        orgId: input.orgId,
        actor: input.actor,
        action: 'otp.submit',
        accountId: input.accountId,
        targetId: input.requestId,
        outcome: 'submitted',
        details: { via: input.via },
      },
      now,
    );
    uow.wake(`asr:${input.requestId}`);
    uow.touch(input.accountId);
    return true;
  });
}

export function makeAssistanceService(deps: AssistanceDeps): AssistanceService {
  const { db, bus, clock } = deps;

  async function audit(
    principal: Principal | { orgId: string; actor: Actor },
    accountId: string,
    requestId: string | null,
    via: CodeVia,
    outcome: string,
  ) {
    await recordAudit(
      db,
      {
        orgId: principal.orgId,
        actor: principal.actor,
        action: 'otp.submit',
        accountId,
        targetId: requestId,
        outcome,
        details: { via },
      },
      clock(),
    );
  }

  return {
    async submitCode(principal, accountId, input) {
      const found = await accountFor(db, principal, accountId);
      if (!found.ok) return found;
      const now = clock();
      const pending = await findPendingRequest(db, accountId);
      if (!pending || pending.expires_at <= now) {
        await audit(principal, accountId, pending?.id ?? null, input.via, 'no_pending_request');
        return fail('NO_PENDING_REQUEST', 'this account has no pending assistance request');
      }
      if (input.requestId !== undefined && input.requestId !== pending.id) {
        await audit(principal, accountId, input.requestId, input.via, 'stale_request');
        return fail('STALE_REQUEST', `request ${input.requestId} is not the pending one (${pending.id})`);
      }
      if (pending.type === 'approval') {
        await audit(principal, accountId, pending.id, input.via, 'approval_request');
        return fail(
          'CONFLICT',
          "this request waits for the login to be approved in the bank's app; it takes no code (type approval)",
        );
      }
      const descriptor = JSON.parse(pending.descriptor) as CodeDescriptor;
      const check = checkCode(input.code, descriptor);
      if (!check.ok) {
        await audit(principal, accountId, pending.id, input.via, 'code_format');
        return fail('CODE_FORMAT', `the code does not fit the request: ${check.reason}`, [
          { path: '/code', message: check.reason },
        ]);
      }
      if (pending.code_submitted_at !== null) {
        await audit(principal, accountId, pending.id, input.via, 'code_in_flight');
        return fail('CODE_IN_FLIGHT', 'the bank is still judging an earlier code for this request');
      }
      const stored = await storeCode(deps, {
        orgId: principal.orgId,
        actor: principal.actor,
        accountId,
        requestId: pending.id,
        code: check.code,
        via: input.via,
      });
      if (!stored) {
        const current = await findRequest(db, pending.id);
        const inFlight = current?.state === 'pending';
        await audit(principal, accountId, pending.id, input.via, inFlight ? 'code_in_flight' : 'stale_request');
        return inFlight
          ? fail('CODE_IN_FLIGHT', 'the bank is still judging an earlier code for this request')
          : fail('STALE_REQUEST', 'the request is no longer pending');
      }
      return ok({ submitted: true, request_id: pending.id, attemptsBefore: pending.attempts });
    },

    async awaitOutcome(submitted, timeoutMs) {
      const deadline = clock() + timeoutMs;
      for (;;) {
        const remaining = deadline - clock();
        const waiter = bus.waiter(`verdict:${submitted.request_id}`, Math.min(Math.max(remaining, 0), deps.pollMs));
        const row = await findRequest(db, submitted.request_id);
        if (!row) {
          waiter.cancel();
          throw new Error(`request ${submitted.request_id} vanished`);
        }
        let outcome: CodeOutcome | null = null;
        if (row.state === 'fulfilled') outcome = 'accepted';
        else if (row.attempts > submitted.attemptsBefore || row.state !== 'pending') outcome = 'rejected';
        else if (remaining <= 0) outcome = 'pending';
        if (outcome) {
          waiter.cancel();
          return { outcome, request: assistanceView(row) };
        }
        await waiter.promise;
      }
    },
  };
}
