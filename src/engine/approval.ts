import type { ApprovalOptions, ApprovalRequest, ApprovalStatus } from '../connectors/sdk.js';
import type { ApprovalDescriptor } from '../core/descriptor.js';
import {
  AssistanceEnded,
  closeRequest,
  fulfillRequest,
  type HandoffDeps,
  type HandoffSession,
  openRequest,
} from './handoff.js';

const DEFAULT_POLL_MS = 1000;
const withdrawn = () => new AssistanceEnded('withdrawn', 'the approval request was closed while the login waited');
/** A bank is not asked more often than this, nor so rarely that an approval waits long unseen. */
const MIN_POLL_MS = 100;
const MAX_POLL_MS = 10_000;

/**
 * Decoupled approval: the bank waits for the user to approve the login in its app. The request is
 * an assistance request like a code's (same table, events, deadline and status), of type `approval`,
 * which no code can answer; the connector's `check` asks the bank until it says yes, the bank gives
 * up, or the deadline passes.
 */
export async function requestApproval(
  deps: HandoffDeps,
  session: HandoffSession,
  request: ApprovalRequest,
  check: () => Promise<ApprovalStatus>,
  options: ApprovalOptions = {},
): Promise<void> {
  if (session.loginMode === 'simple') {
    throw new AssistanceEnded(
      'code_required',
      'the bank asked for an approval in its app and the account logs in without assistance (login_mode simple)',
    );
  }
  const { transact, clock } = deps;
  const pollMs = Math.min(Math.max(options.pollMs ?? DEFAULT_POLL_MS, MIN_POLL_MS), MAX_POLL_MS);
  const descriptor: ApprovalDescriptor = { purpose: request.purpose, prompt: request.prompt };
  // No code is ever taken: nothing to count.
  const row = await openRequest(deps, session, { type: 'approval', descriptor, maxAttempts: 0 });

  const expire = async (reason: 'deadline' | 'bank_expired', message: string): Promise<never> => {
    await transact((trx, uow) => closeRequest(trx, uow, row, { state: 'expired', reason, at: clock() }));
    throw new AssistanceEnded('expired', message);
  };

  for (;;) {
    session.signal.throwIfAborted();
    let status: ApprovalStatus;
    try {
      status = await check();
    } catch (error) {
      await transact((trx, uow) =>
        closeRequest(trx, uow, row, { state: 'cancelled', reason: 'connector_error', at: clock() }),
      );
      throw error;
    }
    switch (status.outcome) {
      case 'approved': {
        const at = clock();
        await transact((trx, uow) => fulfillRequest(trx, uow, session, row, { via: null, reason: 'approved', at }));
        session.stage('assistance_fulfilled');
        return;
      }
      case 'expired':
        return expire('bank_expired', 'the bank stopped waiting for the approval');
      case 'pending':
        break;
      default: {
        const never: never = status;
        throw new Error(`unknown approval status ${JSON.stringify(never)}`);
      }
    }
    const remaining = row.expires_at - clock();
    if (remaining <= 0) return expire('deadline', 'the login was not approved before the deadline');
    // Woken early only when the request is closed elsewhere (a lost lease, a cancelled session).
    const closed = await deps.bus.waiter(`verdict:${row.id}`, Math.min(pollMs, remaining), session.signal).promise;
    if (closed) {
      const current = await deps.db
        .selectFrom('assistance_requests')
        .select('state')
        .where('id', '=', row.id)
        .executeTakeFirst();
      if (current?.state !== 'pending') throw withdrawn();
    }
  }
}
