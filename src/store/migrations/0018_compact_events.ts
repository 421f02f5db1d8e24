import type { Kysely, Migration } from 'kysely';

/**
 * Compact movement events (issue 19.3): a `bank_movement` (or `payment_received`) event references
 * its movement row, which never changes, instead of carrying a copy of it; readers load the movement
 * when they build the envelope. Events stored before keep their copy in `data` and read as before:
 * rewriting them would touch every outbox row at upgrade for space that only comes back as they are
 * pruned (SQLite's file does not shrink without VACUUM anyway).
 */
export function compactEvents(): Migration {
  return {
    // biome-ignore lint/suspicious/noExplicitAny: Kysely's documented migration signature
    async up(db: Kysely<any>) {
      await db.schema.alterTable('events').addColumn('movement_id', 'text').execute();
    },
  };
}
