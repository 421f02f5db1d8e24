import { CompiledQuery, type Kysely } from 'kysely';
import type { Dialect } from './db.js';
import type { Database } from './schema.js';

/** Statement texts by shape, so a bulk insert builds its SQL once and hits the statement cache after. */
const texts = new Map<string, string>();

function insertText(dialect: Dialect, table: string, columns: readonly string[], rows: number, suffix: string): string {
  const key = `${dialect}|${table}|${columns.join(',')}|${rows}|${suffix}`;
  let text = texts.get(key);
  if (text === undefined) {
    let n = 0;
    const tuple = () => `(${columns.map(() => (dialect === 'postgres' ? `$${++n}` : '?')).join(', ')})`;
    const tuples = Array.from({ length: rows }, tuple).join(', ');
    text = `insert into "${table}" (${columns.map((c) => `"${c}"`).join(', ')}) values ${tuples}${suffix ? ` ${suffix}` : ''}`;
    if (texts.size > 1000) texts.clear();
    texts.set(key, text);
  }
  return text;
}

/**
 * A multi-row INSERT without the query builder: for hot paths that write hundreds of rows
 * (movements, outbox events), where building the statement costs more than running it. `suffix` is
 * appended verbatim (e.g. an `on conflict … do nothing returning id`); it must hold no user input.
 */
export async function insertRows<R = unknown>(
  db: Kysely<Database>,
  dialect: Dialect,
  table: string,
  columns: readonly string[],
  rows: readonly (readonly unknown[])[],
  suffix = '',
): Promise<R[]> {
  if (rows.length === 0) return [];
  const parameters: unknown[] = [];
  for (const row of rows) for (const value of row) parameters.push(value);
  const result = await db.executeQuery<R>(
    CompiledQuery.raw(insertText(dialect, table, columns, rows.length, suffix), parameters),
  );
  return result.rows;
}
