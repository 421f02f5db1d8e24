import { type Compilable, CompiledQuery, type Kysely, type QueryResult } from 'kysely';
import { type Dialect, dialectOf, dummyFor } from './db.js';
import type { Database } from './schema.js';

/**
 * A query built and compiled once, then run with new parameter values: for the few reads on the
 * hottest routes, where building and compiling with the query builder costs more than SQLite does.
 * `build` receives placeholders; each must be used once, as a plain value (not inside `in` lists).
 */
export function prepared<P extends string, R>(
  build: (q: Kysely<Database>, params: Record<P, string>) => Compilable<R>,
  names: readonly P[],
): (db: Kysely<Database>, values: Record<P, unknown>) => Promise<R[]> {
  const run = compiledOnce(build, names);
  return async (db, values) => (await run(db, values)).rows;
}

/**
 * As `prepared`, for a write on a hot path: answers how many rows it changed (inserted, updated or
 * deleted), which lets a conditional write say whether its condition held.
 */
export function preparedWrite<P extends string>(
  build: (q: Kysely<Database>, params: Record<P, string>) => Compilable<unknown>,
  names: readonly P[],
): (db: Kysely<Database>, values: Record<P, unknown>) => Promise<number> {
  const run = compiledOnce(build, names);
  return async (db, values) => Number((await run(db, values)).numAffectedRows ?? 0n);
}

function compiledOnce<P extends string, R>(
  build: (q: Kysely<Database>, params: Record<P, string>) => Compilable<R>,
  names: readonly P[],
): (db: Kysely<Database>, values: Record<P, unknown>) => Promise<QueryResult<R>> {
  const marks = Object.fromEntries(names.map((name) => [name, `\u0000param:${name}\u0000`])) as Record<P, string>;
  const compile = (dialect: Dialect) => {
    const compiled = build(dummyFor(dialect), marks).compile();
    const slots = compiled.parameters.map((value) => names.find((name) => marks[name] === value));
    if (slots.filter((slot) => slot !== undefined).length !== names.length) {
      throw new Error(`prepared query: every placeholder must appear exactly once (${compiled.sql})`);
    }
    return { sql: compiled.sql, parameters: compiled.parameters, slots };
  };
  // Compiled for both dialects at load time, so a bad placeholder fails at start, not on first use.
  const byDialect = { sqlite: compile('sqlite'), postgres: compile('postgres') };
  return (db, values) => {
    const compiled = byDialect[dialectOf(db)];
    const parameters = compiled.parameters.map((value, i) => {
      const slot = compiled.slots[i];
      return slot === undefined ? value : values[slot];
    });
    return db.executeQuery<R>(CompiledQuery.raw(compiled.sql, parameters));
  };
}
