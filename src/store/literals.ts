import { type RawBuilder, sql } from 'kysely';
import { ACTIVE_SESSION_STATES, type SessionState } from '../core/states.js';

/*
 * State constants written into the SQL text instead of bound as parameters. SQLite uses a partial
 * index (`… where state = 'pending'`) only when the query repeats the index's condition literally; a
 * bound `?` hides it and the lookup scans the account's whole history instead.
 */

export const PENDING = sql.lit('pending') as RawBuilder<'pending'>;
export const QUEUED = sql.lit('queued') as RawBuilder<'queued'>;
export const ACTIVE_STATES = ACTIVE_SESSION_STATES.map((state) => sql.lit(state) as RawBuilder<SessionState>);
/** Sessions a worker holds (claimed, not yet ended): what a bank sees as logins in progress. */
export const RUNNING_STATES = [sql.lit('running'), sql.lit('awaiting_assistance')] as RawBuilder<SessionState>[];

/** Delivery states that still need work (the partial indexes `deliveries_due` and `deliveries_line`). */
export const OPEN_DELIVERY = [sql.lit('pending'), sql.lit('failed')] as RawBuilder<'pending' | 'failed'>[];

/** Results still waiting for their login (the partial index `results_open`). */
export const OPEN_RESULT = [sql.lit('PENDING'), sql.lit('RECONNECT_REQUIRED')] as RawBuilder<
  'PENDING' | 'RECONNECT_REQUIRED'
>[];
