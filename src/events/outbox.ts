import type { Transaction } from 'kysely';
import { EVENT_STATUS, type EventEnvelope, type EventType } from '../core/events.js';
import { newId } from '../core/ids.js';
import { type Clock, iso } from '../core/time.js';
import type { Db } from '../store/db.js';
import type { Database, EventsTable } from '../store/schema.js';
import type { Bus } from './bus.js';

export type Tx = Transaction<Database>;

export interface NewEvent {
  orgId: string;
  accountId: string | null;
  type: EventType;
  data: unknown;
}

/** What a transaction may do besides SQL; all of it takes effect only after the commit. */
export interface UnitOfWork {
  /** Writes an outbox event in this transaction (no change without its event, no event without its change). */
  emit(event: NewEvent): void;
  /** Wakes status long-polls of this account after the commit. */
  touch(accountId: string): void;
  /** Publishes a bus topic after the commit. */
  wake(topic: string, payload?: unknown): void;
}

export type Transact = <T>(work: (trx: Tx, uow: UnitOfWork) => Promise<T>) => Promise<T>;

const EVENT_CHUNK = 500;

export function toEnvelope(
  row: Pick<EventsTable, 'id' | 'type' | 'status' | 'account_id' | 'data' | 'occurred_at'>,
): EventEnvelope {
  return {
    id: row.id,
    type: row.type as EventType,
    status: row.status,
    account_id: row.account_id,
    data: JSON.parse(row.data) as unknown,
    occurred_at: iso(row.occurred_at),
  };
}

/**
 * Runs `work` in one database transaction together with the outbox rows it emits, then, after the
 * commit, publishes the events and wake-ups on the bus.
 */
export function makeTransact(deps: { db: Db; bus: Bus; clock: Clock }): Transact {
  return async (work) => {
    const events: EventsTable[] = [];
    const topics = new Map<string, unknown>();
    const uow: UnitOfWork = {
      emit(event) {
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
        if (event.accountId) topics.set(`account:${event.accountId}`, undefined);
      },
      touch(accountId) {
        topics.set(`account:${accountId}`, undefined);
      },
      wake(topic, payload) {
        topics.set(topic, payload);
      },
    };
    const result = await deps.db.transaction().execute(async (trx) => {
      const value = await work(trx, uow);
      for (let i = 0; i < events.length; i += EVENT_CHUNK) {
        const rows = events.slice(i, i + EVENT_CHUNK).map(({ seq: _seq, ...row }) => row);
        await trx.insertInto('events').values(rows).execute();
      }
      return value;
    });
    for (const event of events) deps.bus.publish('event', toEnvelope(event));
    for (const [topic, payload] of topics) deps.bus.publish(topic, payload);
    return result;
  };
}
