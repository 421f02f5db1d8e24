import type { Kysely } from 'kysely';
import type { Static } from 'typebox';
import { accountFor } from '../accounts/access.js';
import { findPendingForSession } from '../assistance/reads.js';
import { recordAudit } from '../audit/repo.js';
import { newId } from '../core/ids.js';
import { fail, ok, type Result } from '../core/result.js';
import { type Clock, iso } from '../core/time.js';
import type { Bus } from '../events/bus.js';
import type { Transact, UnitOfWork } from '../events/outbox.js';
import { makePresence, type Presence } from '../events/presence.js';
import { singleFlight } from '../events/single-flight.js';
import { onEvent } from '../events/subscribe.js';
import { topics } from '../events/topics.js';
import { waitFor } from '../events/wait.js';
import { decodeKeyCursor } from '../http/schemas.js';
import type { Principal } from '../keys/principal.js';
import { openReconnect, RECONNECT_TTL_MS } from '../reconnect/repo.js';
import { queueLogin } from '../sessions/transitions.js';
import type { Db } from '../store/db.js';
import { OPEN_RESULT } from '../store/literals.js';
import type { Database, DataKind, ResultStatus, ResultsTable } from '../store/schema.js';
import { type DataParams, storedPayload } from './payload.js';
import type { EnvelopeSchema } from './schemas.js';

/** The data API's answer; `GET /v1/results/:id` returns the same. */
export type Envelope = Static<typeof EnvelopeSchema>;

export interface DataService {
  /**
   * Answers from stored data, or with `refresh` (or when nothing is stored yet) from a live login:
   * `OK` when it ends within the wait, `RECONNECT_REQUIRED` as soon as it needs the owner's code,
   * `PENDING` when the wait runs out, `FAILED` when it fails.
   */
  call(
    principal: Principal,
    accountId: string,
    kind: DataKind,
    params: DataParams,
    options: { refresh: boolean; signal?: AbortSignal },
  ): Promise<Result<Envelope>>;
  result(principal: Principal, resultsId: string): Promise<Result<Envelope>>;
  /** Settles open results whose login moved on; returns how many changed. Run by the resolver loop. */
  resolve(): Promise<number>;
  /** Starts the resolver loop (event-driven, with a fallback poll). */
  start(): void;
  stop(): Promise<void>;
}

export interface DataDeps {
  db: Db;
  transact: Transact;
  bus: Bus;
  clock: Clock;
  /** Longest wait of a call for its live login, ms (OTPILOT_DATA_WAIT_SECONDS). */
  waitMs: number;
  /** Fallback poll, ms. */
  pollMs: number;
  shutdown: AbortSignal;
  /** Where a failed resolver pass is reported (it retries on the next wake-up). */
  onError: (error: unknown) => void;
}

const MOVING_EVENTS = ['scrape_succeeded', 'scrape_failed', 'login_failed', 'assistance_required'] as const;

/** Kept 30 days, then `GONE`. */
const RESULTS_TTL_MS = RECONNECT_TTL_MS;

function envelope(row: Pick<ResultsTable, 'id' | 'status' | 'payload' | 'message' | 'reconnect_id'>, now: number) {
  const payload =
    row.status === 'RECONNECT_REQUIRED'
      ? { reconnect_id: row.reconnect_id, type: 'reconnect' }
      : row.payload === null
        ? null
        : JSON.parse(row.payload);
  return { status: row.status, payload, results_id: row.id, message: row.message, timestamp: iso(now)! };
}

const MESSAGES: Record<ResultStatus, string> = {
  OK: 'data ready',
  PENDING: 'the bank login is still running; results_ready fires when it ends (GET /v1/results/:id)',
  RECONNECT_REQUIRED: "the bank asks the account's owner for a one-time code: open the reconnect widget",
  FAILED: 'the bank login failed',
};

/**
 * The session behind a result, and whether it waits for the account's owner: a pending request with
 * no code already with the bank, that otpilot cannot answer itself (an authenticator prompt on an
 * account with a TOTP secret is answered in a moment, so it needs nobody).
 */
/** Whether any result is still open (waiting for a login, or parked on a reconnect). */
async function anyOpen(db: Kysely<Database>): Promise<boolean> {
  const row = await db
    .selectFrom('results')
    .select('id')
    .where('status', 'in', OPEN_RESULT)
    .limit(1)
    .executeTakeFirst();
  return row !== undefined;
}

async function inspect(db: Kysely<Database>, sessionId: string) {
  const session = await db
    .selectFrom('sessions')
    .select(['state', 'failure_category', 'failure_message', 'account_id'])
    .where('id', '=', sessionId)
    .executeTakeFirst();
  if (session?.state !== 'awaiting_assistance') return { session, waitingForOwner: false };
  const request = await findPendingForSession(db, sessionId);
  if (!request || request.code_submitted_at !== null) return { session, waitingForOwner: false };
  const config = await db
    .selectFrom('account_config')
    .select('totp_secret_enc')
    .where('account_id', '=', request.account_id)
    .executeTakeFirst();
  const selfAnswered =
    request.type === 'otp' && request.descriptor.channel === 'authenticator' && !!config?.totp_secret_enc;
  return { session, waitingForOwner: !selfAnswered };
}

export function makeDataService(deps: DataDeps): DataService {
  const { db, transact, bus, clock } = deps;

  /**
   * Moves an open result to its final status, once (compare-and-set on the open states). A result
   * answered through a reconnect first completes the reconnect, so `account_reconnected` precedes
   * `results_ready`.
   */
  async function settle(
    trx: Kysely<Database>,
    uow: UnitOfWork,
    row: ResultsTable,
    outcome: { status: 'OK' | 'FAILED'; message: string | null },
    now: number,
  ): Promise<boolean> {
    const payload =
      outcome.status === 'OK'
        ? JSON.stringify(await storedPayload(trx, row.account_id, row.kind, JSON.parse(row.params)))
        : null;
    const updated = await trx
      .updateTable('results')
      .set({ status: outcome.status, payload, message: outcome.message, updated_at: now })
      .where('id', '=', row.id)
      .where('status', 'in', OPEN_RESULT)
      .executeTakeFirst();
    if (updated.numUpdatedRows !== 1n) return false;
    if (row.reconnect_id && outcome.status === 'OK') {
      const completed = await trx
        .updateTable('reconnects')
        .set({ state: 'completed', completed_at: now })
        .where('id', '=', row.reconnect_id)
        .where('state', '=', 'pending')
        .executeTakeFirst();
      if (completed.numUpdatedRows === 1n) {
        uow.emit({
          orgId: row.org_id,
          accountId: row.account_id,
          type: 'account_reconnected',
          data: { id: row.account_id, reconnect_id: row.reconnect_id },
        });
      }
    }
    uow.emit({ orgId: row.org_id, accountId: row.account_id, type: 'results_ready', data: { id: row.id } });
    return true;
  }

  /** Brings one open result up to date with its login; returns its row as it now stands. */
  async function advance(row: ResultsTable): Promise<ResultsTable> {
    if (!row.session_id) return row;
    const { session, waitingForOwner } = await inspect(db, row.session_id);
    const now = clock();
    if (!session) return row;
    switch (session.state) {
      case 'succeeded':
        await transact((trx, uow) => settle(trx, uow, row, { status: 'OK', message: MESSAGES.OK }, now));
        break;
      case 'failed':
      case 'cancelled': {
        // A reconnect outlives the login it was opened for: its owner can start a new one for 30 days.
        if (row.reconnect_id) {
          const reconnect = await db
            .selectFrom('reconnects')
            .select(['state', 'expires_at'])
            .where('id', '=', row.reconnect_id)
            .executeTakeFirst();
          if (reconnect?.state === 'pending' && reconnect.expires_at > now) return row;
        }
        const message = `the bank login failed: ${session.failure_category ?? session.state}${
          session.failure_message ? ` (${session.failure_message})` : ''
        }`;
        await transact((trx, uow) => settle(trx, uow, row, { status: 'FAILED', message }, now));
        break;
      }
      case 'queued':
      case 'running':
      case 'awaiting_assistance':
        if (!waitingForOwner || row.status !== 'PENDING') return row;
        await transact(async (trx) => {
          const reconnectId = await openReconnect(trx, {
            orgId: row.org_id,
            accountId: row.account_id,
            sessionId: row.session_id!,
            now,
          });
          await trx
            .updateTable('results')
            .set({
              status: 'RECONNECT_REQUIRED',
              reconnect_id: reconnectId,
              message: MESSAGES.RECONNECT_REQUIRED,
              updated_at: now,
            })
            .where('id', '=', row.id)
            .where('status', '=', 'PENDING')
            .execute();
        });
        break;
      default: {
        const never: never = session.state;
        throw new Error(`unknown session state ${String(never)}`);
      }
    }
    // Something was written (or lost a race to whoever wrote it): read the row as it now stands.
    return db.selectFrom('results').selectAll().where('id', '=', row.id).executeTakeFirstOrThrow();
  }

  /** Queues a live login for the account, or joins the one already running. */
  async function liveSession(principal: Principal, accountId: string, now: number): Promise<string> {
    return transact(async (trx, uow) => {
      const login = await queueLogin(trx, uow, {
        orgId: principal.orgId,
        accountId,
        trigger: 'manual',
        now,
        join: true,
      });
      if (!login) throw new Error('joined logins are never refused');
      if (!login.queued) return login.sessionId;
      const queued = login.sessionId;
      await recordAudit(
        trx,
        {
          orgId: principal.orgId,
          actor: principal.actor,
          action: 'data.refresh',
          accountId,
          targetId: queued,
          outcome: 'queued',
        },
        now,
      );
      return queued;
    });
  }

  let timer: NodeJS.Timeout | null = null;
  let unsubscribe: (() => void) | null = null;
  let stopping: Promise<unknown> = Promise.resolve();

  async function resolveOpen(): Promise<number> {
    // Rows parked on a reconnect move only when their login succeeds; the others move with any change.
    const rows = await db
      .selectFrom('results as r')
      .innerJoin('sessions as s', 's.id', 'r.session_id')
      .selectAll('r')
      .where('r.status', 'in', OPEN_RESULT)
      .where((eb) => eb.or([eb('r.status', '=', 'PENDING'), eb('s.state', '=', 'succeeded')]))
      .orderBy('r.id')
      .limit(500)
      .execute();
    let changed = 0;
    for (const row of rows) {
      const after = await advance(row);
      if (after.status !== row.status) changed++;
    }
    return changed;
  }

  /** One pass at a time; a wake-up during a pass causes one more. */
  const resolving = singleFlight(async () => {
    if (!deps.shutdown.aborted) await resolveOpen().catch(deps.onError);
  });
  const kick = (): void => {
    stopping = resolving();
  };
  // Most installations never ask for results: an event's wake-up looks for open ones only while some
  // may exist (announced by `call`, here or in another process). The interval passes always look.
  let open: Presence | null = null;
  const wake = (): void => {
    const presence = open;
    if (!presence) return;
    const previous = stopping;
    stopping = presence
      .mayExist()
      .then((may) => (may ? resolving() : previous))
      .catch(deps.onError);
  };

  return {
    async call(principal, accountId, kind, params, options) {
      const found = await accountFor(db, principal, accountId);
      if (!found.ok) return found;
      const now = clock();
      const id = newId('res', now);
      const base = {
        id,
        org_id: principal.orgId,
        account_id: accountId,
        kind,
        params: JSON.stringify(params),
        created_at: now,
        updated_at: now,
        expires_at: now + RESULTS_TTL_MS,
        reconnect_id: null,
      };
      // The one filter the schema cannot check (a foreign cursor is a 400), before any login starts.
      decodeKeyCursor(params.cursor, 2);
      if (!options.refresh && found.value.last_success_at !== null) {
        const row = {
          ...base,
          status: 'OK' as const,
          payload: JSON.stringify(await storedPayload(db, accountId, kind, params)),
          message: MESSAGES.OK,
          session_id: null,
        };
        await db.insertInto('results').values(row).execute();
        return ok(envelope(row, now));
      }

      const sessionId = await liveSession(principal, accountId, now);
      let row: ResultsTable = {
        ...base,
        status: 'PENDING',
        payload: null,
        message: MESSAGES.PENDING,
        session_id: sessionId,
      };
      await db.insertInto('results').values(row).execute();
      bus.publish(topics.created('results'));
      const monotonic = () => performance.now();
      const settled = await waitFor({
        bus,
        topic: topics.account(accountId),
        read: async () => {
          row = await advance(row);
          return row;
        },
        done: (current) => current.status !== 'PENDING' || deps.shutdown.aborted,
        until: monotonic() + deps.waitMs,
        clock: monotonic,
        pollMs: deps.pollMs,
        signal: options.signal ?? deps.shutdown,
      });
      return ok(envelope(settled.value, clock()));
    },

    async result(principal, resultsId) {
      const row = await db
        .selectFrom('results')
        .selectAll()
        .where('id', '=', resultsId)
        .where('org_id', '=', principal.orgId)
        .executeTakeFirst();
      if (!row) return fail('NOT_FOUND', 'results not found');
      const account = await accountFor(db, principal, row.account_id);
      if (!account.ok) return account;
      const now = clock();
      if (row.expires_at <= now) return fail('GONE', 'these results have expired (they are kept 30 days)');
      const current = row.status === 'PENDING' || row.status === 'RECONNECT_REQUIRED' ? await advance(row) : row;
      return ok(envelope(current, now));
    },

    resolve: resolveOpen,

    start() {
      if (timer) return;
      timer = setInterval(kick, deps.pollMs);
      timer.unref();
      // The events that can move a result: a login ended, or it now waits for its owner. The interval
      // covers the rest (a cancelled login) and any missed wake-up.
      const presence = makePresence({
        bus,
        topic: topics.created('results'),
        look: () => anyOpen(db),
        trustMs: deps.pollMs,
      });
      open = presence;
      const off = onEvent(bus, MOVING_EVENTS, wake);
      unsubscribe = () => {
        off();
        presence.stop();
      };
    },

    async stop() {
      if (timer) clearInterval(timer);
      timer = null;
      unsubscribe?.();
      unsubscribe = null;
      await stopping;
    },
  };
}
