/** Network error codes and PostgreSQL SQLSTATEs that mean "the database cannot be reached right now". */
const STORAGE_DOWN_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENOTFOUND',
  'SQLITE_BUSY',
  '57P01', // admin_shutdown
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now
  '53300', // too_many_connections: the server is full, not our bug; a retry later can succeed
  '08000',
  '08001',
  '08003',
  '08004',
  '08006',
]);
/** node-postgres reports a lost or never-made connection with these messages and no code. */
const STORAGE_DOWN_MESSAGES =
  /^(Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|Connection terminated unexpectedly)/;

/** Whether `error` says the database is unreachable (answered 503, not 500: it is not our bug). */
export function isStorageUnavailable(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' && STORAGE_DOWN_CODES.has(code)) return true;
  if (STORAGE_DOWN_MESSAGES.test(error.message)) return true;
  // AggregateError from a connect to several addresses.
  return error instanceof AggregateError && error.errors.some((inner) => isStorageUnavailable(inner));
}

/** Whether `error` is a unique-key violation (PostgreSQL 23505, SQLite's UNIQUE / PRIMARY KEY). */
export function isUniqueViolation(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === '23505' || code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
}

/**
 * Runs a read-then-insert transaction, and once more if a concurrent one inserted the same key first
 * (PostgreSQL's read committed lets both read "absent"): the second attempt finds the winner's row.
 */
export async function onceMoreIfDuplicate<T>(attempt: () => Promise<T>): Promise<T> {
  try {
    return await attempt();
  } catch (error) {
    if (!isUniqueViolation(error)) throw error;
    return attempt();
  }
}
