import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import type { Static } from 'typebox';
import { accountFor } from '../accounts/access.js';
import type { AccountsService } from '../accounts/service.js';
import { findPendingRequest } from '../assistance/reads.js';
import type { SubmitDeps } from '../assistance/submit.js';
import { recordAudit } from '../audit/repo.js';
import { type BankView, findBank } from '../banks/repo.js';
import type { FieldSpec } from '../connectors/sdk.js';
import { fail, ok, type Result } from '../core/result.js';
import { iso } from '../core/time.js';
import type { Bus } from '../events/bus.js';
import { topics } from '../events/topics.js';
import { waitFor } from '../events/wait.js';
import type { Principal } from '../keys/principal.js';
import type { ConnectSessionsTable } from '../store/schema.js';
import { actorOf, findConnectSession, markReauthorized } from './repo.js';
import type { CommitResultSchema, ConnectSessionSchema } from './schemas.js';
import { isSettled, type LoginStep, loginStep, messageFor, passwordField, uiFor } from './step.js';

/** A connect session can be driven this long after it opened (like the token that opened it). */
export const CONNECT_SESSION_TTL_MS = 10 * 60_000;
/** Longest one call waits for the login's next step, ms: well under common HTTP client timeouts. */
export const DEFAULT_STEP_WAIT_MS = 20_000;

/** The connect session object (docs/api.md, "Reauthorisation"). */
export type ConnectAnswer = Static<typeof ConnectSessionSchema>;

/**
 * The commit answer: 99 with `data.code` when done, 102 with the next form otherwise. `code` is the
 * account id: otpilot's account keeps its id, so there is nothing to exchange.
 */
export type CommitAnswer = Static<typeof CommitResultSchema>;

export type CommitInput = { kind: 'otp'; otp: string } | { kind: 'password'; password: string };

/**
 * When opening and committing, an approval is answered at once (102, its message): the person must
 * learn to approve in the bank's app. GET /v1/connect/session then waits through it (`isSettled`).
 */
export const answerable = (step: LoginStep) => isSettled(step) || step.kind === 'approval';

export interface ReauthDeps extends SubmitDeps {
  bus: Bus;
  accounts: Pick<AccountsService, 'putConfig'>;
  log: Logger;
  /** Fallback poll behind the wake-ups, ms. */
  pollMs: number;
  /** Longest wait of one call for the next step, ms. */
  stepWaitMs?: number;
}

export interface Loaded {
  cs: ConnectSessionsTable;
  bank: BankView;
  password: FieldSpec | null;
}

export type ConnectFlow = ReturnType<typeof makeConnectFlow>;

/**
 * The steps of a connect session: reading where its login stands, waiting for the next step worth
 * answering, completing it once, and the answers' shapes. Shared by opening, reading and committing.
 */
export function makeConnectFlow(deps: ReauthDeps) {
  const { db, transact, bus, clock } = deps;

  async function audit(
    principal: Pick<Principal, 'orgId' | 'actor'>,
    accountId: string,
    action: string,
    targetId: string | null,
    outcome: string,
    details?: Record<string, unknown>,
  ) {
    await recordAudit(
      db,
      {
        orgId: principal.orgId,
        actor: principal.actor,
        action,
        accountId,
        targetId,
        outcome,
        ...(details ? { details } : {}),
      },
      clock(),
    );
  }

  async function bankOf(bankId: string): Promise<BankView> {
    const bank = await findBank(db, bankId);
    if (!bank) throw new Error(`bank ${bankId} is missing`);
    return bank;
  }

  /** A connect session the caller may drive: its organization (404), its accounts (403), not expired (410). */
  async function load(principal: Principal, connectId: string): Promise<Result<Loaded>> {
    const cs = await findConnectSession(db, principal.orgId, connectId);
    if (!cs) return fail('NOT_FOUND', 'connect session not found');
    const account = await accountFor(db, principal, cs.account_id);
    if (!account.ok) return account;
    if (cs.expires_at <= clock()) {
      return fail('GONE', 'the connect session expired; ask for a new token with POST /v1/accounts/:id/reauthorise');
    }
    const bank = await bankOf(account.value.bank_id);
    return ok({ cs, bank, password: passwordField(bank.credential_fields) });
  }

  /** The current step, from fresh rows (a concurrent password commit may have moved the session). */
  async function readStep(loaded: Loaded): Promise<{ cs: ConnectSessionsTable; step: LoginStep }> {
    const cs =
      (await db.selectFrom('connect_sessions').selectAll().where('id', '=', loaded.cs.id).executeTakeFirst()) ??
      loaded.cs;
    const [session, pending] = await Promise.all([
      db
        .selectFrom('sessions')
        .select(['id', 'state', 'failure_category', 'failure_message'])
        .where('id', '=', cs.session_id)
        .executeTakeFirst(),
      findPendingRequest(db, cs.account_id),
    ]);
    if (!session) return { cs, step: { kind: 'failed', reason: 'session_missing', message: 'the login is gone' } };
    return { cs, step: loginStep(session, pending, loaded.password) };
  }

  /**
   * Waits for the login to reach a step worth answering, woken by the account's wake-ups (every
   * request, verdict and session end touches it) with a fallback poll. The bound is wall time, not the
   * injected clock: it limits how long an HTTP call is held, whatever the domain time says.
   */
  async function awaitStep(
    loaded: Loaded,
    signal: AbortSignal,
    deadline: number,
    until: (step: LoginStep) => boolean,
  ): Promise<{ cs: ConnectSessionsTable; step: LoginStep }> {
    const { value: read } = await waitFor({
      bus,
      topic: topics.account(loaded.cs.account_id),
      read: () => readStep(loaded),
      done: (value) => until(value.step),
      until: deadline,
      clock: () => performance.now(),
      pollMs: deps.pollMs,
      signal,
    });
    if (read.step.kind === 'done') await complete(read.cs);
    return read;
  }

  /**
   * The reauthorisation succeeded: `account_reauthorized` exactly once per connect session (the
   * compare-and-set on `reauthorized_at` decides between the API call and the success listener), and
   * the account's block lifted, as a restart would: working credentials are what the block waited for.
   */
  async function complete(cs: ConnectSessionsTable): Promise<void> {
    await transact(async (trx, uow) => {
      const now = clock();
      if (!(await markReauthorized(trx, cs.id, now))) return;
      await trx
        .updateTable('accounts')
        .set({ blocked_at: null, blocked_reason: null, updated_at: now })
        .where('id', '=', cs.account_id)
        .where('blocked_at', 'is not', null)
        .execute();
      await recordAudit(
        trx,
        {
          orgId: cs.org_id,
          actor: actorOf(cs),
          action: 'account.reauthorise.complete',
          accountId: cs.account_id,
          targetId: cs.id,
          outcome: 'reauthorized',
          details: { session_id: cs.session_id },
        },
        now,
      );
      uow.emit({
        orgId: cs.org_id,
        accountId: cs.account_id,
        type: 'account_reauthorized',
        data: { id: cs.account_id },
      });
    });
  }

  function connectAnswer(cs: ConnectSessionsTable, bank: BankView, step: LoginStep): Result<ConnectAnswer> {
    if (step.kind === 'failed') return fail('CONFLICT', messageFor(step));
    const message = messageFor(step);
    return ok({
      status: 200,
      message,
      id: cs.id,
      account_id: cs.account_id,
      bank: { id: bank.id, name: bank.name },
      expires_at: iso(cs.expires_at),
      ui: uiFor(step, bank.name),
      reauth: { response_code: step.kind === 'done' ? 99 : 102, message },
    });
  }

  function commitAnswer(cs: ConnectSessionsTable, bank: BankView, step: LoginStep): Result<CommitAnswer> {
    if (step.kind === 'failed') return fail('CONFLICT', messageFor(step));
    const done = step.kind === 'done';
    return ok({
      status: 200,
      response_code: done ? 99 : 102,
      message: messageFor(step),
      id: cs.id,
      ui: uiFor(step, bank.name),
      data: done ? { code: cs.account_id } : null,
    });
  }

  return { audit, bankOf, load, readStep, awaitStep, complete, connectAnswer, commitAnswer };
}
