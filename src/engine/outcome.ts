import { isConnectorError } from '../connectors/sdk.js';
import type { SessionOutcome } from '../sessions/transitions.js';
import { isStorageUnavailable } from '../store/errors.js';
import { AssistanceEnded } from './handoff.js';
import { ConnectorTimeout, DeadlinePassed } from './watchdog.js';

/** Why the runner's abort signal fired (`timeout`: the watchdog's, with its error). */
export type AbortCause = 'cancel' | 'shutdown' | 'lease_lost' | 'timeout';

/** Classifies an error thrown by a login or scrape. `abortCause` is set when our own signal fired. */
export function classifyFailure(error: unknown, abortCause: AbortCause | null): SessionOutcome {
  if (abortCause === 'cancel') return { state: 'cancelled', reason: 'session_cancelled' };
  if (abortCause === 'shutdown')
    return { state: 'failed', category: 'shutdown', message: 'the worker shut down during the session' };
  if (error instanceof ConnectorTimeout)
    return { state: 'failed', category: 'connector_timeout', message: error.message };
  if (error instanceof DeadlinePassed)
    return { state: 'failed', category: 'assistance_expired', message: error.message };
  if (error instanceof AssistanceEnded) {
    switch (error.reason) {
      case 'expired':
        return { state: 'failed', category: 'assistance_expired', message: error.message };
      case 'attempts_exhausted':
        return { state: 'failed', category: 'attempts_exhausted', message: error.message };
      case 'withdrawn':
        return { state: 'failed', category: 'worker_lost', message: error.message };
      case 'code_required':
      case 'no_code_source':
        return { state: 'failed', category: 'assistance_unavailable', message: error.message };
      default: {
        const never: never = error.reason;
        throw new Error(`unknown reason ${String(never)}`);
      }
    }
  }
  // By shape, so a plain-JavaScript connector can throw `{ kind, message }` without importing the SDK.
  if (isConnectorError(error))
    return { state: 'failed', category: error.kind, message: connectorMessage(error.kind, error.message) };
  // Our own store failed under the login (unreachable, or no connection free in time): not the
  // connector's fault and not the bank's; the account is rescheduled like a lost worker's.
  if (isStorageUnavailable(error))
    return { state: 'failed', category: 'worker_lost', message: 'the worker could not reach the database' };
  // Anything else is a connector bug; its message may hold bank internals, so keep it generic.
  return { state: 'failed', category: 'connector_broken', message: 'the connector failed unexpectedly' };
}

/** The stored `failure_message`: the connector's own words (bounded), or a plain one when it gave none. */
function connectorMessage(kind: string, message: unknown): string {
  if (typeof message === 'string' && message.trim() !== '') return message.slice(0, 500);
  return `the connector reported ${kind.replace('_', ' ')}`;
}
