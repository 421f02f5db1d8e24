import { findRequest } from '../assistance/reads.js';
import { closeRequest } from '../assistance/requests.js';
import type { ApprovalOptions, ApprovalRequest, ApprovalStatus } from '../connectors/sdk.js';
import { topics } from '../events/topics.js';
import { waitFor } from '../events/wait.js';
import {
  AssistanceEnded,
  closeAndRethrow,
  fulfil,
  type HandoffDeps,
  type HandoffSession,
  openAssistance,
} from './handoff.js';

const DEFAULT_POLL_MS = 1000;
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
  const pollMs = Math.min(Math.max(options.poll_ms ?? DEFAULT_POLL_MS, MIN_POLL_MS), MAX_POLL_MS);
  // No code is ever taken: nothing to count.
  const row = await openAssistance(deps, session, {
    type: 'approval',
    descriptor: { purpose: request.purpose, prompt: request.prompt },
    maxAttempts: 0,
  });

  const expire = async (reason: 'deadline' | 'bank_expired', message: string): Promise<never> => {
    await transact((trx, uow) => closeRequest(trx, uow, row, { state: 'expired', reason, at: clock() }));
    throw new AssistanceEnded('expired', message);
  };

  for (;;) {
    session.signal.throwIfAborted();
    let status: ApprovalStatus;
    try {
      status = await session.watchdog.call('check', check);
    } catch (error) {
      return closeAndRethrow(deps, session, row, error);
    }
    switch (status.outcome) {
      case 'approved':
        return fulfil(deps, session, row, { via: null, submissionId: null, reason: 'approved' });
      case 'expired':
        return expire('bank_expired', 'the bank stopped waiting for the approval');
      case 'pending':
        break;
      default: {
        const never: never = status;
        throw new Error(`unknown approval status ${JSON.stringify(never)}`);
      }
    }
    if (clock() >= row.expires_at) return expire('deadline', 'the login was not approved before the deadline');
    // Until the next look at the bank; woken early only when the request is closed elsewhere (a lost
    // lease, a cancelled session).
    // The interval is wall time (monotonic); only the deadline is on the service clock.
    const monotonic = () => performance.now();
    const closed = await session.watchdog.paused(() =>
      waitFor({
        bus: deps.bus,
        topic: topics.verdict(row.id),
        read: async () => (await findRequest(deps.db, row.id))?.state !== 'pending',
        done: (isClosed) => isClosed,
        until: monotonic() + Math.min(pollMs, row.expires_at - clock()),
        clock: monotonic,
        pollMs,
        signal: session.signal,
        batch: { waiters: deps.waiters, kind: 'closed', key: row.id },
      }),
    );
    if (closed.done) throw new AssistanceEnded('withdrawn', 'the approval request was closed while the login waited');
  }
}
