import { performance } from 'node:perf_hooks';
import { accountFor } from '../accounts/access.js';
import { recordAudit } from '../audit/repo.js';
import { newId } from '../core/ids.js';
import { fail, ok, type Result } from '../core/result.js';
import { iso } from '../core/time.js';
import { topics } from '../events/topics.js';
import type { Principal } from '../keys/principal.js';
import { queueLogin } from '../sessions/transitions.js';
import type { ConnectSessionsTable } from '../store/schema.js';
import {
  answerable,
  CONNECT_SESSION_TTL_MS,
  type ConnectAnswer,
  type ConnectFlow,
  DEFAULT_STEP_WAIT_MS,
  type Loaded,
  type ReauthDeps,
} from './flow.js';
import { findToken, insertConnectSession, insertToken, spendToken } from './repo.js';
import { passwordField } from './step.js';
import { generateReauthToken, hashReauthToken, REAUTH_TOKEN_TTL_MS } from './token.js';

/** Single-use reauthorisation tokens: issued for one account, spent once to open a connect session. */

export async function issueToken(
  deps: ReauthDeps,
  principal: Principal,
  accountId: string,
): Promise<Result<{ token: string; expires_at: string }>> {
  const { db, transact, clock } = deps;
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
}

/** Spends a token, starts (or joins) a login, and answers with its first step. */
export async function openSession(
  deps: ReauthDeps,
  flow: ConnectFlow,
  principal: Principal,
  token: string,
  signal: AbortSignal,
): Promise<Result<ConnectAnswer>> {
  const { db, transact, clock } = deps;
  const stepWaitMs = deps.stepWaitMs ?? DEFAULT_STEP_WAIT_MS;
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
    await flow.audit(principal, row.account_id, 'account.reauthorise.session', null, 'token_expired');
    return fail('GONE', 'the reauth token expired; ask for a new one with POST /v1/accounts/:id/reauthorise');
  }
  const used = () =>
    fail('GONE', 'the reauth token was already used; ask for a new one with POST /v1/accounts/:id/reauthorise');
  if (row.used_at !== null) {
    await flow.audit(principal, row.account_id, 'account.reauthorise.session', row.connect_session_id, 'token_reused');
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
    uow.wake(topics.created('connect_sessions'));
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
    await flow.audit(principal, row.account_id, 'account.reauthorise.session', null, 'token_reused');
    return used();
  }
  const bank = await flow.bankOf(account.value.bank_id);
  const loaded: Loaded = { cs, bank, password: passwordField(bank.credential_fields) };
  const next = await flow.awaitStep(loaded, signal, deadline, answerable);
  return flow.connectAnswer(next.cs, bank, next.step);
}
