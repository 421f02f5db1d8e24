import type { Transaction } from 'kysely';
import { EVENT_STATUS, type EventEnvelope, type EventType } from '../core/events.js';
import { newId } from '../core/ids.js';
import { type Clock, iso } from '../core/time.js';
import { insertRows } from '../store/bulk.js';
import type { Db, Dialect } from '../store/db.js';
import type { Database, EventsTable } from '../store/schema.js';
import type { Bus } from './bus.js';
import type { EventPayload } from './subscribe.js';
import { topics } from './topics.js';

export type Tx = Transaction<Database>;

/** An event to write; the payload of a type some part of the service listens for is checked here. */
export type NewEvent = {
  [T in EventType]: { orgId: string; accountId: string | null; type: T; data: EventPayload<T> };
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

// 7 columns × 500 rows, well under both dialects' bound-parameter limits.
const EVENT_CHUNK = 500;
const EVENT_COLUMNS = [
  'id',
  'org_id',
  'account_id',
  'type',
  'status',
  'data',
  'occurred_at',
] as const satisfies readonly (keyof EventsTable)[];

export function toEnvelope(
  row: Pick<EventsTable, 'id' | 'type' | 'status' | 'account_id' | 'data' | 'occurred_at'>,
): EventEnvelope {
  return {
    id: row.id,
    type: row.type,
    status: row.status,
    account_id: row.account_id,
    data: JSON.parse(row.data) as unknown,
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
          data: JSON.stringify(event.data),
          occurred_at: deps.clock(),
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
