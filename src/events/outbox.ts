import type { Kysely, Transaction } from 'kysely';
import { EVENT_STATUS, type EventEnvelope, type EventType } from '../core/events.js';
import { newId } from '../core/ids.js';
import { type Clock, iso } from '../core/time.js';
import { movementView } from '../movements/view.js';
import { insertRows } from '../store/bulk.js';
import type { Db, Dialect } from '../store/db.js';
import type { Database, EventsTable } from '../store/schema.js';
import type { Bus } from './bus.js';
import type { EventPayload } from './subscribe.js';
import { topics } from './topics.js';

export type Tx = Transaction<Database>;

/** An event to write; the payload of a type some part of the service listens for is checked here. */
export type NewEvent = {
  [T in EventType]: {
    orgId: string;
    accountId: string | null;
    type: T;
    data: EventPayload<T>;
    /**
     * The movement `data` is the view of (`bank_movement`, `payment_received`): the event stores this
     * reference instead of a copy, and readers load the movement (it never changes) for the envelope.
     */
    movementId?: string;
  };
}[EventType];

/** What a transaction may do besides SQL; all of it takes effect only after the commit. */
export interface UnitOfWork {
  /** Writes an outbox event in this transaction (no change without its event, no event without its change). */
  emit(event: NewEvent): void;
  /** Wakes status long-polls of this account after the commit. */
  touch(accountId: string): void;
  /** Publishes a bus topic after the commit. */
  wake(topic: string, payload?: unknown): void;
  /** The store's SQL dialect, for the few statements written without the query builder. */
  readonly dialect: Dialect;
}

export type Transact = <T>(work: (trx: Tx, uow: UnitOfWork) => Promise<T>) => Promise<T>;

// 8 columns × 500 rows, well under both dialects' bound-parameter limits.
const EVENT_CHUNK = 500;
const EVENT_COLUMNS = [
  'id',
  'org_id',
  'account_id',
  'type',
  'status',
  'data',
  'occurred_at',
  'movement_id',
] as const satisfies readonly (keyof EventsTable)[];

/**
 * Reads outbox events with what their envelopes need: the event's columns and, for a compact
 * movement event, its movement's (left join on the primary key; `mv_*` null for other events, or
 * when the movement is gone). Narrow it with `where` on `e.*` columns.
 */
export function selectEvents(db: Kysely<Database>) {
  return db
    .selectFrom('events as e')
    .leftJoin('movements as mv', 'mv.id', 'e.movement_id')
    .select([
      'e.seq',
      'e.id',
      'e.org_id',
      'e.account_id',
      'e.type',
      'e.status',
      'e.data',
      'e.occurred_at',
      'e.movement_id',
      'mv.account_id as mv_account_id',
      'mv.bank_account_id as mv_bank_account_id',
      'mv.external_id as mv_external_id',
      'mv.booked_at as mv_booked_at',
      'mv.amount as mv_amount',
      'mv.currency as mv_currency',
      'mv.name as mv_name',
      'mv.reference as mv_reference',
      'mv.created_at as mv_created_at',
    ]);
}

/** An event row as `selectEvents` reads it. */
export type StoredEvent = Awaited<ReturnType<ReturnType<typeof selectEvents>['executeTakeFirstOrThrow']>>;

/**
 * The envelope of a stored event, or null when it references a movement that no longer exists (its
 * account was deleted, which deletes its movements): such an event is gone, as a pruned one is.
 * Events written before migration 0018 carry their movement as a copy in `data` and read from it.
 */
export function toEnvelope(row: StoredEvent): EventEnvelope | null {
  let data: unknown;
  if (row.movement_id === null) data = JSON.parse(row.data) as unknown;
  else if (row.mv_account_id === null) return null;
  else
    data = movementView({
      id: row.movement_id,
      account_id: row.mv_account_id,
      bank_account_id: row.mv_bank_account_id!,
      external_id: row.mv_external_id,
      booked_at: row.mv_booked_at!,
      amount: row.mv_amount!,
      currency: row.mv_currency!,
      name: row.mv_name!,
      reference: row.mv_reference,
      created_at: Number(row.mv_created_at),
    });
  return {
    id: row.id,
    type: row.type,
    status: row.status,
    account_id: row.account_id,
    data,
    occurred_at: iso(row.occurred_at),
  };
}

/** Times a transaction PostgreSQL aborted as a deadlock or serialization victim is run [5]. */
const TRANSACTION_ATTEMPTS = 5;

/**
 * PostgreSQL's deadlock and serialization failures: it rolled the whole transaction back, so running
 * `work` again is safe and is what it asks for (two requests racing on one account, say).
 */
function isRetryable(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === '40P01' || code === '40001';
}

/**
 * Runs `work` in one database transaction together with the outbox rows it emits, then, after the
 * commit, publishes the events and wake-ups on the bus. A transaction PostgreSQL aborts as a
 * deadlock or serialization victim runs again from the start (its events and wake-ups collected
 * afresh) after a short random pause, up to TRANSACTION_ATTEMPTS times.
 */
export function makeTransact(deps: { db: Db; dialect: Dialect; bus: Bus; clock: Clock }): Transact {
  const once = async <T>(work: (trx: Tx, uow: UnitOfWork) => Promise<T>): Promise<T> => {
    const events: EventsTable[] = [];
    const emitted: unknown[] = [];
    const wakes = new Map<string, unknown>();
    const uow: UnitOfWork = {
      emit(event) {
        emitted.push(event.data);
        events.push({
          seq: undefined as never,
          id: newId('evt'),
          org_id: event.orgId,
          account_id: event.accountId,
          type: event.type,
          status: EVENT_STATUS[event.type],
          data: event.movementId === undefined ? JSON.stringify(event.data) : '',
          occurred_at: deps.clock(),
          movement_id: event.movementId ?? null,
        });
        if (event.accountId) wakes.set(topics.account(event.accountId), undefined);
      },
      touch(accountId) {
        wakes.set(topics.account(accountId), undefined);
      },
      wake(topic, payload) {
        wakes.set(topic, payload);
      },
      dialect: deps.dialect,
    };
    // Called with a transaction already open (the first-start bootstrap), the work joins it.
    const inTransaction = (fn: (trx: Tx) => Promise<T>) =>
      deps.db.isTransaction ? fn(deps.db as Tx) : deps.db.transaction().execute(fn);
    const result = await inTransaction(async (trx) => {
      const value = await work(trx, uow);
      for (let i = 0; i < events.length; i += EVENT_CHUNK) {
        const rows = events.slice(i, i + EVENT_CHUNK).map((event) => EVENT_COLUMNS.map((column) => event[column]));
        await insertRows(trx, deps.dialect, 'events', EVENT_COLUMNS, rows);
      }
      return value;
    });
    for (let i = 0; i < events.length; i++) {
      const event = events[i]!;
      // The envelope from the emitted object itself: no JSON round trip on the hot path.
      const envelope: EventEnvelope = {
        id: event.id,
        type: event.type,
        status: event.status,
        account_id: event.account_id,
        data: emitted[i],
        occurred_at: new Date(event.occurred_at).toISOString(),
      };
      deps.bus.publish(topics.event, envelope);
    }
    for (const [topic, payload] of wakes) deps.bus.publish(topic, payload);
    return result;
  };
  return async (work) => {
    for (let attempt = 1; ; attempt++) {
      try {
        return await once(work);
      } catch (error) {
        if (attempt >= TRANSACTION_ATTEMPTS || !isRetryable(error)) throw error;
        // A random pause, growing with each attempt, so the transactions that collided do not again.
        await new Promise((resolve) => setTimeout(resolve, Math.random() * 10 * attempt));
      }
    }
  };
}
