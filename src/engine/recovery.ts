import type { Logger } from 'pino';
import type { Clock } from '../core/time.js';
import type { Transact } from '../events/outbox.js';
import { findLostSessions, type Stage } from '../sessions/transitions.js';
import type { Db } from '../store/db.js';
import { finishFailure } from './runner.js';

/**
 * Ends sessions whose worker stopped renewing its lease (crash, kill, lost machine): the session fails
 * with `worker_lost`, its pending request is cancelled, and a scheduled account runs again soon.
 * Nothing stays pending forever. Returns how many sessions it ended.
 */
export async function recoverLostSessions(deps: {
  db: Db;
  transact: Transact;
  clock: Clock;
  log: Logger;
}): Promise<number> {
  const now = deps.clock();
  const lost = await findLostSessions(deps.db, now, 500);
  for (const session of lost) {
    // Also brings a scheduled account's next run forward (see finishFailure).
    await finishFailure(
      { ...deps, owner: null },
      session,
      JSON.parse(session.stages) as Stage[],
      { state: 'failed', category: 'worker_lost', message: 'the worker holding this session stopped' },
      'login_failed',
      Number.POSITIVE_INFINITY,
    );
    deps.log.warn({ session_id: session.id, account_id: session.account_id }, 'session lost its worker');
  }
  return lost.length;
}
