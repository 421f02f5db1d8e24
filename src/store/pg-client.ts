import type pg from 'pg';

/**
 * Closes a dedicated PostgreSQL connection we no longer want (lost, replaced or shutting down):
 * its own listeners go, and a late 'error' from the dying socket is swallowed instead of crashing
 * the process. Resolves when it is closed; never rejects.
 */
export function discardClient(client: pg.Client): Promise<void> {
  client.removeAllListeners();
  client.on('error', () => {});
  return client.end().catch(() => {});
}
