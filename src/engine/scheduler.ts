import { scheduleNext } from '../accounts/service.js';
import type { Clock } from '../core/time.js';
import type { Transact } from '../events/outbox.js';
import { queueSession } from '../sessions/repo.js';
import type { Db } from '../store/db.js';

const DUE_BATCH = 500;

/**
 * One scheduler tick: queues a session for every due, unblocked account and moves its next run on.
 * An account whose session is still active just gets its next run moved (no pile-up).
 * Returns how many sessions it queued.
 */
export async function scheduleDue(deps: {
  db: Db;
  transact: Transact;
  clock: Clock;
  random: () => number;
}): Promise<number> {
  const now = deps.clock();
  const due = await deps.db
    .selectFrom('accounts as a')
    .innerJoin('account_config as c', 'c.account_id', 'a.id')
    .select(['a.id', 'a.org_id', 'c.schedule'])
    .where('a.next_run_at', 'is not', null)
    .where('a.next_run_at', '<=', now)
    .where('a.blocked_at', 'is', null)
    .orderBy('a.next_run_at')
    .limit(DUE_BATCH)
    .execute();
  if (due.length === 0) return 0;
  return deps.transact(async (trx, uow) => {
    let queued = 0;
    for (const account of due) {
      const id = await queueSession(trx, { orgId: account.org_id, accountId: account.id, trigger: 'schedule', now });
      if (id) queued++;
      uow.touch(account.id); // next_run_at moves either way
      await trx
        .updateTable('accounts')
        .set({ next_run_at: scheduleNext(account.schedule, now, deps.random()) })
        .where('id', '=', account.id)
        .execute();
    }
    if (queued > 0) uow.wake('work');
    return queued;
  });
}
