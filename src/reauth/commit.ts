import { performance } from 'node:perf_hooks';
import { findPendingRequest } from '../assistance/reads.js';
import { submitFailure } from '../assistance/refusals.js';
import { awaitVerdict, submitCode } from '../assistance/submit.js';
import { recordAudit } from '../audit/repo.js';
import { fail, type Result } from '../core/result.js';
import type { Principal } from '../keys/principal.js';
import { queueLogin } from '../sessions/transitions.js';
import { answerable, type CommitAnswer, type ConnectFlow, type Loaded, type ReauthDeps } from './flow.js';
import { moveConnectSession } from './repo.js';
import { messageFor } from './step.js';

export async function commitCode(
  deps: ReauthDeps,
  flow: ConnectFlow,
  principal: Principal,
  loaded: Loaded,
  otp: string,
  deadline: number,
  signal: AbortSignal,
): Promise<Result<CommitAnswer>> {
  const { cs } = await flow.readStep(loaded);
  const pending = await findPendingRequest(deps.db, cs.account_id);
  if (!pending || pending.session_id !== cs.session_id) {
    await flow.audit(principal, cs.account_id, 'account.reauthorise.commit', cs.id, 'no_pending_request', {
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
  await flow.audit(principal, cs.account_id, 'account.reauthorise.commit', cs.id, 'code_submitted', {
    input: 'otp',
    request_id: pending.id,
  });
  await awaitVerdict(
    { db: deps.db, bus: deps.bus, pollMs: deps.pollMs, signal },
    submitted,
    Math.max(0, deadline - performance.now()),
  );
  const next = await flow.awaitStep(loaded, signal, deadline, answerable);
  return flow.commitAnswer(next.cs, loaded.bank, next.step);
}

export async function commitPassword(
  deps: ReauthDeps,
  flow: ConnectFlow,
  principal: Principal,
  loaded: Loaded,
  password: string,
  deadline: number,
  signal: AbortSignal,
): Promise<Result<CommitAnswer>> {
  const { cs, step } = await flow.readStep(loaded);
  if (step.kind !== 'password') {
    await flow.audit(principal, cs.account_id, 'account.reauthorise.commit', cs.id, 'password_not_asked', {
      input: 'password',
    });
    return fail('CONFLICT', `the bank did not ask for a password: ${messageFor(step)}`);
  }
  // Only the password changes; the other fields (the username) stay as stored.
  const row = await deps.db
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
  await deps.transact(async (trx, uow) => {
    const now = deps.clock();
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
  const next = await flow.awaitStep(loaded, signal, deadline, answerable);
  return flow.commitAnswer(next.cs, loaded.bank, next.step);
}
