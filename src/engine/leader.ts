import pg from 'pg';
import type { Logger } from 'pino';
import { discardClient } from '../store/pg-client.js';

/** Decides whether this process runs a singleton duty (the scheduler tick) right now. */
export interface Leadership {
  /** True while this process holds the duty; tries to take it when free. Never throws. */
  holds(): Promise<boolean>;
  /** Whether this process held the duty at its last check (for metrics). */
  current(): boolean;
  /** Gives the duty up (on shutdown), so another process takes it at its next try. */
  release(): Promise<void>;
}

/** One process alone on its store (SQLite): always the leader. */
export const soleLeader: Leadership = { holds: async () => true, current: () => true, release: async () => {} };

/**
 * Runs `work` while holding a session-level advisory lock on a dedicated connection (waiting for it),
 * e.g. so that two processes starting on an empty store do not both create a first organization.
 */
export async function withAdvisoryLock<T>(
  clientConfig: pg.ClientConfig,
  name: string,
  work: () => Promise<T>,
): Promise<T> {
  const client = new pg.Client(clientConfig);
  client.on('error', () => {});
  try {
    await client.connect();
    await client.query('select pg_advisory_lock(hashtext($1))', [name]);
    return await work();
  } finally {
    // Closing the connection releases the lock.
    await discardClient(client);
  }
}

/**
 * Leadership by a PostgreSQL session-level advisory lock on a dedicated connection. The lock lives
 * as long as that connection: when the process dies, PostgreSQL drops the connection and the lock,
 * and the next process to try (each tries every scheduler tick) takes it over.
 */
export function makeAdvisoryLeadership(options: {
  clientConfig: pg.ClientConfig;
  /** Names the lock; hashed to PostgreSQL's 32-bit advisory key space with `hashtext`. */
  name: string;
  log: Logger;
}): Leadership {
  let client: pg.Client | null = null;
  let held = false;
  let connecting: Promise<pg.Client> | null = null;

  const drop = (which: pg.Client) => {
    if (client !== which) return;
    if (held) options.log.warn({ lock: options.name }, 'lost the scheduler lock (connection closed)');
    client = null;
    held = false;
    void discardClient(which);
  };

  async function connection(): Promise<pg.Client> {
    if (client) return client;
    connecting ??= (async () => {
      const next = new pg.Client(options.clientConfig);
      next.on('error', () => drop(next));
      next.on('end', () => drop(next));
      client = next;
      try {
        await next.connect();
        // The lock dies with this connection. A machine that vanishes without closing it would keep
        // the lock until the server's TCP keepalive gives up (hours by default): ask for ~25 s.
        await next.query('set tcp_keepalives_idle = 10; set tcp_keepalives_interval = 5; set tcp_keepalives_count = 3');
      } catch (error) {
        drop(next);
        throw error;
      }
      return next;
    })().finally(() => {
      connecting = null;
    });
    return connecting;
  }

  return {
    current: () => held,
    async holds() {
      try {
        const c = await connection();
        if (held) {
          // Still ours only while the connection is alive: a cheap round trip proves it.
          await c.query('select 1');
          return held;
        }
        const { rows } = await c.query<{ ok: boolean }>('select pg_try_advisory_lock(hashtext($1)) as ok', [
          options.name,
        ]);
        held = rows[0]?.ok === true;
        if (held) options.log.info({ lock: options.name }, 'took the scheduler lock');
        return held;
      } catch {
        if (client) drop(client);
        return false;
      }
    },
    async release() {
      const c = client;
      if (!c) return;
      client = null;
      held = false;
      // Closing the connection releases the lock.
      await discardClient(c);
    },
  };
}
