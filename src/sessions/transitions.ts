import type { Kysely } from 'kysely';
import { cancelForSession } from '../assistance/requests.js';
import { afterFailure } from '../core/failure-policy.js';
import { newId } from '../core/ids.js';
import type { FailureCategory, SessionTrigger } from '../core/states.js';
import type { Tx, UnitOfWork } from '../events/outbox.js';
import { topics } from '../events/topics.js';
import { ACTIVE_STATES, QUEUED } from '../store/literals.js';
import type { Database, SessionsTable } from '../store/schema.js';

/*
 * THE owner of `sessions`: every write to the table is here, each a compare-and-set on the state
 * (and, for a worker, on its lease), so a session moves once:
 *
 *   queued ──claim──▶ running ◀──hold──▶ awaiting_assistance
 *     │                  ├──succeed──▶ succeeded
 *     │                  └──fail─────▶ failed | cancelled
 *     └──cancel──▶ cancelled
 */

type Db = Kysely<Database>;

/** A stage the session passed, with when. */
export interface Stage {
  name: string;
  at: string;
}

/** How a session ended, decided from what the login threw (see engine/outcome.ts). */
export type SessionOutcome =
  | { state: 'cancelled'; reason: string }
  | { state: 'failed'; category: FailureCategory; message: string };

/**
 * Queues a session unless one is already active for the account (the unique partial index decides,
 * so two callers racing cannot both win). Returns the new id, or null when one was active.
 */
async function insertQueued(
  db: Db,
  input: { orgId: string; accountId: string; trigger: SessionTrigger; now: number },
): Promise<string | null> {
  const id = newId('ses', input.now);
  const inserted = await db
    .insertInto('sessions')
    .values({
      id,
      org_id: input.orgId,
      account_id: input.accountId,
      state: 'queued',
      trigger: input.trigger,
      failure_category: null,
      failure_message: null,
      stages: '[]',
      lease_owner: null,
      lease_expires_at: null,
      cancel_requested_at: null,
      movements_new: 0,
      queued_at: input.now,
      started_at: null,
      finished_at: null,
    })
    .onConflict((oc) => oc.doNothing())
    .returning('id')
    .executeTakeFirst();
  return inserted?.id ?? null;
}

export async function findActiveSession(db: Db, accountId: string): Promise<SessionsTable | undefined> {
  return db
    .selectFrom('sessions')
    .selectAll()
    .where('account_id', '=', accountId)
    .where('state', 'in', ACTIVE_STATES)
    .executeTakeFirst();
}

/**
 * Every caller that starts a login goes through here (scrape now, restart, data refresh, reconnect,
 * reauthorisation, the scheduler). It queues a session and wakes the workers, or finds the one
 * already active: with `join`, that one is the login to follow (a scheduled login already waiting
 * for a code is the login to finish); without, null says a login is already under way.
 */
export async function queueLogin(
  trx: Tx,
  uow: UnitOfWork,
  input: { orgId: string; accountId: string; trigger: SessionTrigger; now: number; join: boolean },
): Promise<{ sessionId: string; queued: boolean } | null> {
  // Twice: an active session may end between the refused insert and the look-up.
  for (let i = 0; i < 2; i++) {
    const queued = await insertQueued(trx, input);
    if (queued) {
      uow.wake(topics.work);
      uow.touch(input.accountId);
      return { sessionId: queued, queued: true };
    }
    if (!input.join) return null;
    const active = await findActiveSession(trx, input.accountId);
    if (active) return { sessionId: active.id, queued: false };
  }
  throw new Error(`could neither queue nor find a login for ${input.accountId}`);
}

/** Moves chosen queued sessions to `running` under this worker's lease (a claim's last step). */
export async function claimSessions(
  trx: Tx,
  ids: readonly string[],
  lease: { owner: string; until: number; now: number },
): Promise<SessionsTable[]> {
  if (ids.length === 0) return [];
  return trx
    .updateTable('sessions')
    .set({ state: 'running', lease_owner: lease.owner, lease_expires_at: lease.until, started_at: lease.now })
    .where('id', 'in', [...ids])
    .where('state', '=', QUEUED)
    .returningAll()
    .execute();
}

/** The running session as its worker knows it. */
export interface HeldSession {
  sessionId: string;
  /** The worker's lease owner id: writes to the session are guarded by it. */
  owner: string;
  /** The stages so far, as JSON. */
  stages(): string;
}

/**
 * Sets a held session's state (`running` or waiting for assistance) with its stages so far, but only
 * while this worker still holds its lease: a worker whose session was declared lost (and its request
 * cancelled) must not bring it back to life. False when the lease is gone.
 */
export async function holdSession(
  trx: Tx,
  session: HeldSession,
  state: 'running' | 'awaiting_assistance',
): Promise<boolean> {
  const result = await trx
    .updateTable('sessions')
    .set({ state, stages: session.stages() })
    .where('id', '=', session.sessionId)
    .where('lease_owner', '=', session.owner)
    .where('state', 'in', ['running', 'awaiting_assistance'])
    .executeTakeFirst();
  return Number(result.numUpdatedRows) === 1;
}

/** Sessions per lease-renewal statement. */
const LEASE_SLICE = 500;

/**
 * Renews the leases of the sessions a worker is actually running, and only while they are still its
 * own (not expired and taken over). Returns the ids it renewed; the others were declared lost.
 */
export async function renewLeases(
  control: Db,
  lease: { owner: string; ids: readonly string[]; until: number; now: number },
): Promise<Set<string>> {
  const kept = new Set<string>();
  // In slices: one statement over thousands of waiting logins held SQLite's (synchronous) loop for
  // 100 ms and more at every heartbeat; slices of 500 let other work run in between.
  for (let start = 0; start < lease.ids.length; start += LEASE_SLICE) {
    const renewed = await control
      .updateTable('sessions')
      .set({ lease_expires_at: lease.until })
      .where('lease_owner', '=', lease.owner)
      .where('id', 'in', lease.ids.slice(start, start + LEASE_SLICE))
      .where('lease_expires_at', '>=', lease.now)
      .where('state', 'in', ['running', 'awaiting_assistance'])
      .returning('id')
      .execute();
    for (const row of renewed) kept.add(row.id);
  }
  return kept;
}

/** A runner that crashed gives its lease up at once, so recovery ends the session (worker_lost). */
export async function releaseLease(db: Db, sessionId: string, owner: string): Promise<void> {
  await db
    .updateTable('sessions')
    .set({ lease_expires_at: 0 })
    .where('id', '=', sessionId)
    .where('lease_owner', '=', owner)
    .execute();
}

/**
 * A sole worker starting up: every session still leased to another owner belongs to a process that
 * is gone, so its lease is given up now and recovery ends it at once.
 */
export async function releaseLeasesOfOthers(db: Db, owner: string): Promise<void> {
  await db
    .updateTable('sessions')
    .set({ lease_expires_at: 0 })
    .where('lease_owner', 'is not', null)
    .where('lease_owner', '!=', owner)
    .where('state', 'in', ['running', 'awaiting_assistance'])
    .execute();
}

/**
 * Ends a session `succeeded` with its stages and count, resets the account's failure history and
 * emits `scrape_succeeded`, guarded by the lease. False when this worker no longer held it (the
 * caller's transaction must then roll back: its results belong to nobody).
 */
export async function succeedSession(
  trx: Tx,
  uow: UnitOfWork,
  input: {
    session: Pick<SessionsTable, 'id' | 'org_id' | 'account_id'>;
    owner: string;
    stages: Stage[];
    movementsNew: number;
    at: number;
  },
): Promise<boolean> {
  const { session, at } = input;
  const result = await trx
    .updateTable('sessions')
    .set({
      state: 'succeeded',
      finished_at: at,
      stages: JSON.stringify([...input.stages, { name: 'succeeded', at: new Date(at).toISOString() }]),
      movements_new: input.movementsNew,
      lease_owner: null,
      lease_expires_at: null,
    })
    .where('id', '=', session.id)
    .where('lease_owner', '=', input.owner)
    .executeTakeFirst();
  if (Number(result.numUpdatedRows) === 0) return false;
  await trx
    .updateTable('accounts')
    .set({ backoff_level: 0, consecutive_failures: 0, last_success_at: at, last_run_at: at, updated_at: at })
    .where('id', '=', session.account_id)
    .execute();
  uow.emit({
    orgId: session.org_id,
    accountId: session.account_id,
    type: 'scrape_succeeded',
    data: { session_id: session.id, movements_new: input.movementsNew },
  });
  return true;
}

/**
 * Ends a session `failed` or `cancelled`: closes its pending request, applies the failure policy to
 * the account (count, back-off, block, run again now) and emits the events. A worker (`owner`) ends
 * only its own session; recovery (no owner) only one whose lease really expired. False when someone
 * else already ended it.
 */
export async function failSession(
  trx: Tx,
  uow: UnitOfWork,
  input: {
    session: Pick<SessionsTable, 'id' | 'org_id' | 'account_id'>;
    owner: string | null;
    stages: Stage[];
    outcome: SessionOutcome;
    failureEvent: 'login_failed' | 'scrape_failed';
    fatalThreshold: number;
    at: number;
  },
): Promise<boolean> {
  const { session, outcome, at } = input;
  let update = trx
    .updateTable('sessions')
    .set({
      state: outcome.state,
      finished_at: at,
      failure_category: outcome.state === 'failed' ? outcome.category : null,
      failure_message: outcome.state === 'failed' ? outcome.message : outcome.reason,
      stages: JSON.stringify([...input.stages, { name: outcome.state, at: new Date(at).toISOString() }]),
      lease_owner: null,
      lease_expires_at: null,
    })
    .where('id', '=', session.id)
    .where('state', 'in', ['queued', 'running', 'awaiting_assistance']);
  update = input.owner ? update.where('lease_owner', '=', input.owner) : update.where('lease_expires_at', '<', at);
  const result = await update.executeTakeFirst();
  if (Number(result.numUpdatedRows) === 0) return false;

  await cancelForSession(trx, uow, session, outcome.state === 'cancelled' ? outcome.reason : outcome.category, at);
  uow.touch(session.account_id);
  if (outcome.state === 'cancelled') return true;

  uow.emit({
    orgId: session.org_id,
    accountId: session.account_id,
    type: input.failureEvent,
    data: { session_id: session.id, failure_category: outcome.category, message: outcome.message },
  });
  let read = trx
    .selectFrom('accounts')
    .select(['consecutive_failures', 'backoff_level', 'blocked_at', 'next_run_at'])
    .where('id', '=', session.account_id);
  if (uow.dialect === 'postgres') read = read.forUpdate();
  const account = await read.executeTakeFirst();
  if (!account) return true;
  const next = afterFailure(
    outcome.category,
    { ...account, blocked: account.blocked_at !== null },
    input.fatalThreshold,
  );
  await trx
    .updateTable('accounts')
    .set({
      consecutive_failures: next.consecutiveFailures,
      backoff_level: next.backoffLevel,
      last_run_at: at,
      updated_at: at,
      ...(next.block !== null ? { blocked_at: at, blocked_reason: next.block } : {}),
      // Cut short by us, not the bank: a scheduled account runs again now, on whichever worker
      // claims it; a manual one waits for its next trigger.
      ...(next.runAgainNow && account.next_run_at !== null && account.next_run_at > at ? { next_run_at: at } : {}),
    })
    .where('id', '=', session.account_id)
    .execute();
  if (next.block !== null) {
    uow.emit({
      orgId: session.org_id,
      accountId: session.account_id,
      type: 'account_blocked',
      data: { reason: next.block, session_id: session.id },
    });
  }
  return true;
}

/**
 * Asks a session to stop: a queued one nobody holds ends here (`cancelled`); a running one is
 * stopped by its worker, woken on the session's topic.
 */
export async function requestCancel(trx: Tx, uow: UnitOfWork, sessionId: string, now: number): Promise<void> {
  const direct = await trx
    .updateTable('sessions')
    .set({ state: 'cancelled', finished_at: now, cancel_requested_at: now })
    .where('id', '=', sessionId)
    .where('state', '=', 'queued')
    .executeTakeFirst();
  if (Number(direct.numUpdatedRows) > 0) return;
  await trx
    .updateTable('sessions')
    .set({ cancel_requested_at: now })
    .where('id', '=', sessionId)
    .where('cancel_requested_at', 'is', null)
    .execute();
  uow.wake(topics.session(sessionId));
}

/** Sessions whose worker stopped renewing its lease (crash, kill, lost machine). */
export async function findLostSessions(
  db: Db,
  now: number,
  limit: number,
): Promise<Pick<SessionsTable, 'id' | 'org_id' | 'account_id' | 'stages'>[]> {
  return db
    .selectFrom('sessions')
    .select(['id', 'org_id', 'account_id', 'stages'])
    .where('lease_owner', 'is not', null)
    .where('lease_expires_at', '<', now)
    .where('state', 'in', ['running', 'awaiting_assistance'])
    .limit(limit)
    .execute();
}

/** Removes an account's sessions with the account. */
export async function deleteSessionsOf(trx: Tx, accountId: string): Promise<void> {
  await trx.deleteFrom('sessions').where('account_id', '=', accountId).execute();
}
