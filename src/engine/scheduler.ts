import { scheduleNext } from '../accounts/service.js';
import { type QuietHours, quietUntil } from '../core/quiet-hours.js';
import type { Clock } from '../core/time.js';
import type { Transact } from '../events/outbox.js';
import { queueLogin } from '../sessions/transitions.js';
import type { Db } from '../store/db.js';

const DUE_BATCH = 500;
/** Back-off never spaces scheduled logins further apart than this. */
const MAX_BACKOFF_MS = 86_400_000;
/** A run pushed out of quiet hours starts up to this much after the window ends (no thundering herd). */
const QUIET_JITTER_MS = 300_000;

/**
 * The next scheduled run: the schedule's own, spaced out 2^level times after prompts nobody
 * answered (capped at a day) so an unattended account is not sent a code every cycle.
 */
function nextScheduledRun(schedule: string | null, now: number, random: number, backoffLevel: number): number | null {
  const next = scheduleNext(schedule, now, random);
  if (next === null || backoffLevel <= 0) return next;
  return now + Math.min((next - now) * 2 ** backoffLevel, MAX_BACKOFF_MS);
}

/**
 * One scheduler tick: queues a session for every due, unblocked account and moves its next run on.
 * An account whose session is still active just gets its next run moved (no pile-up); one inside its
 * quiet hours is moved to the end of the window instead. Returns how many sessions it queued.
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
    .select(['a.id', 'a.org_id', 'a.backoff_level', 'a.next_run_at', 'c.schedule', 'c.quiet_hours'])
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
      const quietEnd = account.quiet_hours ? quietUntil(JSON.parse(account.quiet_hours) as QuietHours, now) : null;
      const next =
        quietEnd !== null
          ? quietEnd + Math.floor(QUIET_JITTER_MS * deps.random())
          : nextScheduledRun(account.schedule, now, deps.random(), account.backoff_level);
      // Compare-and-set on the run time we read: a tick that overlaps this one (or another process
      // during a lock hand-over) finds it moved and queues nothing, so a run is never queued twice.
      const moved = await trx
        .updateTable('accounts')
        .set({ next_run_at: next })
        .where('id', '=', account.id)
        .where('next_run_at', '=', account.next_run_at)
        .executeTakeFirst();
      if (Number(moved.numUpdatedRows) === 0) continue;
      uow.touch(account.id); // next_run_at moves either way
      if (quietEnd !== null) continue;
      const login = await queueLogin(trx, uow, {
        orgId: account.org_id,
        accountId: account.id,
        trigger: 'schedule',
        now,
        join: false,
      });
      if (login) queued++;
    }
    return queued;
  });
}
