import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { accountFor } from '../accounts/access.js';
import type { AccountsService } from '../accounts/service.js';
import { findPendingRequest } from '../assistance/reads.js';
import { submitFailure } from '../assistance/refusals.js';
import { awaitVerdict, type SubmitDeps, submitCode } from '../assistance/submit.js';
import { recordAudit } from '../audit/repo.js';
import { type BankView, findBank } from '../banks/repo.js';
import type { FieldSpec } from '../connectors/sdk.js';
import { newId } from '../core/ids.js';
import { fail, ok, type Result } from '../core/result.js';
import { iso } from '../core/time.js';
import type { Bus } from '../events/bus.js';
import { onEvent } from '../events/subscribe.js';
import { topics } from '../events/topics.js';
import { waitFor } from '../events/wait.js';
import type { Principal } from '../keys/principal.js';
import { queueLogin } from '../sessions/transitions.js';
import type { ConnectSessionsTable } from '../store/schema.js';
import {
  actorOf,
  findConnectSession,
  findToken,
  findWaitingFor,
  insertConnectSession,
  insertToken,
  markReauthorized,
  moveConnectSession,
  spendToken,
} from './repo.js';
import { isSettled, type LoginStep, loginStep, messageFor, passwordField, type Ui, uiFor } from './step.js';
import { generateReauthToken, hashReauthToken, REAUTH_TOKEN_TTL_MS } from './token.js';

/** A connect session can be driven this long after it opened (like the token that opened it). */
const CONNECT_SESSION_TTL_MS = 10 * 60_000;
/** Longest one call waits for the login's next step, ms: well under common HTTP client timeouts. */
const DEFAULT_STEP_WAIT_MS = 20_000;

export type ResponseCode = 99 | 102;

/** The connect session object of api.md ("Reauthorisation flow"). */
export interface ConnectAnswer {
  status: 200;
  message: string;
  id: string;
  account_id: string;
  bank: { id: string; name: string };
  expires_at: string;
  ui: Ui | null;
  reauth: { response_code: ResponseCode; message: string };
}

/** The commit answer: 99 with `data.code` when done, 102 with the next form otherwise. */
export interface CommitAnswer {
  status: 200;
  response_code: ResponseCode;
  message: string;
  id: string;
  ui: Ui | null;
  /** `code` is the account id: otpilot's account keeps its id, so there is nothing to exchange. */
  data: { code: string } | null;
}

export type CommitInput = { kind: 'otp'; otp: string } | { kind: 'password'; password: string };

export interface ReauthService {
  /** A single-use token (10 minutes) for one account; only its hash is stored. */
  issueToken(principal: Principal, accountId: string): Promise<Result<{ token: string; expires_at: string }>>;
  /** Spends a token, starts (or joins) a login, and answers with its first step. */
  openSession(principal: Principal, token: string, signal: AbortSignal): Promise<Result<ConnectAnswer>>;
  /** The connect session's current step, waiting (bounded) for it to settle. */
  getSession(principal: Principal, connectId: string, signal: AbortSignal): Promise<Result<ConnectAnswer>>;
  /** A code (same path as every other) or a new password, then the next step. */
  commit(
    principal: Principal,
    connectId: string,
    input: CommitInput,
    signal: AbortSignal,
  ): Promise<Result<CommitAnswer>>;
  /** Completes connect sessions whose login succeeds while nobody is waiting on the API. */
  start(): void;
  stop(): void;
}

/**
 * When opening and committing, an approval is answered at once (102, its message): the person must
 * learn to approve in the bank's app. GET /v1/connect/session then waits through it (`isSettled`).
 */
const answerable = (step: LoginStep) => isSettled(step) || step.kind === 'approval';

export interface ReauthDeps extends SubmitDeps {
  bus: Bus;
  accounts: Pick<AccountsService, 'putConfig'>;
  log: Logger;
  /** Fallback poll behind the wake-ups, ms. */
  pollMs: number;
  /** Longest wait of one call for the next step, ms. */
  stepWaitMs?: number;
}

interface Loaded {
  cs: ConnectSessionsTable;
  bank: BankView;
  password: FieldSpec | null;
}

export function makeReauthService(deps: ReauthDeps): ReauthService {
  const { db, transact, bus, clock } = deps;
  const stepWaitMs = deps.stepWaitMs ?? DEFAULT_STEP_WAIT_MS;
  let unsubscribe: (() => void) | null = null;

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

  async function commitCode(
    principal: Principal,
    loaded: Loaded,
    otp: string,
    deadline: number,
    signal: AbortSignal,
  ): Promise<Result<CommitAnswer>> {
    const { cs } = await readStep(loaded);
    const pending = await findPendingRequest(db, cs.account_id);
    if (!pending || pending.session_id !== cs.session_id) {
      await audit(principal, cs.account_id, 'account.reauthorise.commit', cs.id, 'no_pending_request', {
        input: 'otp',
      });
      return fail('NO_PENDING_REQUEST', 'the login of this connect session is not waiting for a code');
    }
    // The same compare-and-set, validation and audit as every other way a code arrives.
    const submitted = await submitCode(
      deps,
      { via: 'connect_commit', orgId: principal.orgId, actor: principal.actor },
      { accountId: cs.account_id, requestId: pending.id },
      otp,
    );
    if (!submitted.ok) return submitFailure(submitted, '/otp');
    await audit(principal, cs.account_id, 'account.reauthorise.commit', cs.id, 'code_submitted', {
      input: 'otp',
      request_id: pending.id,
    });
    await awaitVerdict({ db, bus, pollMs: deps.pollMs, signal }, submitted, Math.max(0, deadline - performance.now()));
    const next = await awaitStep(loaded, signal, deadline, answerable);
    return commitAnswer(next.cs, loaded.bank, next.step);
  }

  async function commitPassword(
    principal: Principal,
    loaded: Loaded,
    password: string,
    deadline: number,
    signal: AbortSignal,
  ): Promise<Result<CommitAnswer>> {
    const { cs, step } = await readStep(loaded);
    if (step.kind !== 'password') {
      await audit(principal, cs.account_id, 'account.reauthorise.commit', cs.id, 'password_not_asked', {
        input: 'password',
      });
      return fail('CONFLICT', `the bank did not ask for a password: ${messageFor(step)}`);
    }
    // Only the password changes; the other fields (the username) stay as stored.
    const row = await db
      .selectFrom('accounts')
      .select('credentials_enc')
      .where('id', '=', cs.account_id)
      .executeTakeFirstOrThrow();
    const current = row.credentials_enc
      ? (JSON.parse(deps.cipher.decrypt(row.credentials_enc, `${cs.account_id}:credentials`)) as Record<string, string>)
      : {};
    // The accounts config path: validated against the bank's fields, encrypted, audited.
    const updated = await deps.accounts.putConfig(principal, cs.account_id, {
      credentials: { ...current, [step.field.name]: password },
    });
    if (!updated.ok) return updated;
    await transact(async (trx, uow) => {
      const now = clock();
      const login = await queueLogin(trx, uow, {
        orgId: cs.org_id,
        accountId: cs.account_id,
        trigger: 'manual',
        now,
        join: true,
      });
      if (!login) throw new Error('joined logins are never refused');
      // A concurrent password commit may have moved it already; then both follow the same login.
      const moved = await moveConnectSession(trx, cs.id, cs.session_id, login.sessionId);
      await recordAudit(
        trx,
        {
          orgId: principal.orgId,
          actor: principal.actor,
          action: 'account.reauthorise.commit',
          accountId: cs.account_id,
          targetId: cs.id,
          outcome: 'password_updated',
          details: { input: 'password', session_id: login.sessionId, moved },
        },
        now,
      );
    });
    const next = await awaitStep(loaded, signal, deadline, answerable);
    return commitAnswer(next.cs, loaded.bank, next.step);
  }

  return {
    async issueToken(principal, accountId) {
      const found = await accountFor(db, principal, accountId);
      if (!found.ok) return found;
      const { token, hash } = generateReauthToken();
      const now = clock();
      const expiresAt = now + REAUTH_TOKEN_TTL_MS;
      await transact(async (trx) => {
        await insertToken(trx, {
          token_hash: hash,
          org_id: principal.orgId,
          account_id: accountId,
          actor_type: principal.actor.type,
          actor_id: principal.actor.id,
          created_at: now,
          expires_at: expiresAt,
          used_at: null,
          connect_session_id: null,
        });
        await recordAudit(
          trx,
          {
            orgId: principal.orgId,
            actor: principal.actor,
            action: 'account.reauthorise',
            accountId,
            targetId: accountId,
            outcome: 'issued',
            details: { expires_at: iso(expiresAt) },
          },
          now,
        );
      });
      return ok({ token, expires_at: iso(expiresAt) });
    },

    async openSession(principal, token, signal) {
      const deadline = performance.now() + stepWaitMs;
      const hash = hashReauthToken(token);
      const row = await findToken(db, hash);
      // Another organization's token does not exist for this caller.
      if (!row || row.org_id !== principal.orgId) return fail('NOT_FOUND', 'reauth token not found');
      // Checked before the token is spent: a key that may not act on the account leaves it usable.
      const account = await accountFor(db, principal, row.account_id);
      if (!account.ok) return account;
      const now = clock();
      if (row.expires_at <= now) {
        await audit(principal, row.account_id, 'account.reauthorise.session', null, 'token_expired');
        return fail('GONE', 'the reauth token expired; ask for a new one with POST /v1/accounts/:id/reauthorise');
      }
      const used = () =>
        fail('GONE', 'the reauth token was already used; ask for a new one with POST /v1/accounts/:id/reauthorise');
      if (row.used_at !== null) {
        await audit(principal, row.account_id, 'account.reauthorise.session', row.connect_session_id, 'token_reused');
        return used();
      }
      const connectId = newId('ses', now);
      const cs = await transact(async (trx, uow) => {
        if (!(await spendToken(trx, hash, connectId, now))) return null;
        const login = await queueLogin(trx, uow, {
          orgId: principal.orgId,
          accountId: row.account_id,
          trigger: 'manual',
          now,
          join: true,
        });
        if (!login) throw new Error('joined logins are never refused');
        const created: ConnectSessionsTable = {
          id: connectId,
          org_id: principal.orgId,
          account_id: row.account_id,
          session_id: login.sessionId,
          actor_type: principal.actor.type,
          actor_id: principal.actor.id,
          created_at: now,
          expires_at: now + CONNECT_SESSION_TTL_MS,
          reauthorized_at: null,
        };
        await insertConnectSession(trx, created);
        await recordAudit(
          trx,
          {
            orgId: principal.orgId,
            actor: principal.actor,
            action: 'account.reauthorise.session',
            accountId: row.account_id,
            targetId: connectId,
            outcome: 'started',
            details: { session_id: login.sessionId, joined: !login.queued },
          },
          now,
        );
        uow.touch(row.account_id);
        return created;
      });
      if (!cs) {
        // Lost the race to another use of the same token.
        await audit(principal, row.account_id, 'account.reauthorise.session', null, 'token_reused');
        return used();
      }
      const bank = await bankOf(account.value.bank_id);
      const loaded: Loaded = { cs, bank, password: passwordField(bank.credential_fields) };
      const next = await awaitStep(loaded, signal, deadline, answerable);
      return connectAnswer(next.cs, bank, next.step);
    },

    async getSession(principal, connectId, signal) {
      const deadline = performance.now() + stepWaitMs;
      const loaded = await load(principal, connectId);
      if (!loaded.ok) return loaded;
      const { cs, bank } = loaded.value;
      if (cs.reauthorized_at !== null) return connectAnswer(cs, bank, { kind: 'done' });
      const next = await awaitStep(loaded.value, signal, deadline, isSettled);
      return connectAnswer(next.cs, bank, next.step);
    },

    async commit(principal, connectId, input, signal) {
      const deadline = performance.now() + stepWaitMs;
      const loaded = await load(principal, connectId);
      if (!loaded.ok) return loaded;
      if (loaded.value.cs.reauthorized_at !== null)
        return fail('CONFLICT', 'this connect session is already complete (response_code 99)');
      switch (input.kind) {
        case 'otp':
          return commitCode(principal, loaded.value, input.otp, deadline, signal);
        case 'password':
          return commitPassword(principal, loaded.value, input.password, deadline, signal);
        default: {
          // Its kind only: the input holds a code or a password.
          const never: never = input;
          throw new Error(`unknown commit input ${String((never as { kind: unknown }).kind)}`);
        }
      }
    },

    start() {
      if (unsubscribe) return;
      unsubscribe = onEvent(bus, ['scrape_succeeded'], (event) => {
        void findWaitingFor(db, event.data.session_id)
          .then((cs) => (cs ? complete(cs) : undefined))
          .catch((error: unknown) => deps.log.error({ err: error }, 'completing a reauthorisation failed'));
      });
    },

    stop() {
      unsubscribe?.();
      unsubscribe = null;
    },
  };
}
