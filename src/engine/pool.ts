import { setMaxListeners } from 'node:events';
import type { Logger } from 'pino';
import type { Clock } from '../core/time.js';
import type { Bus } from '../events/bus.js';
import type { Db } from '../store/db.js';
import { QUEUED } from '../store/literals.js';
import type { SessionsTable } from '../store/schema.js';

export interface WorkerPoolOptions {
  db: Db;
  bus: Bus;
  clock: Clock;
  log: Logger;
  /** Lease owner id of this process. */
  owner: string;
  /** Sessions run at once [config.workerConcurrency]. */
  concurrency: number;
  /** Lease period, ms; renewed every third of it. */
  leaseMs: number;
  /** Fallback poll for queued work, ms. */
  pollMs: number;
  run(session: SessionsTable, shutdown: AbortSignal): Promise<void>;
}

export interface WorkerPool {
  start(): void;
  /** Stops claiming, aborts running sessions (they end as `shutdown`) and waits for them. */
  stop(): Promise<void>;
  /** Sessions running in this process. */
  active(): number;
}

const CLAIM_BATCH = 50;

/**
 * Claims queued sessions with a lease and runs them, up to `concurrency` at once. Woken by the `work`
 * topic, with a fallback poll; one heartbeat query renews the leases of every running session.
 */
export function makeWorkerPool(options: WorkerPoolOptions): WorkerPool {
  const { db, bus, clock, owner, leaseMs } = options;
  const shutdown = new AbortController();
  // Every running session listens for shutdown: thousands may, by design.
  setMaxListeners(0, shutdown.signal);
  const running = new Set<Promise<void>>();
  let pumping = false;
  let again = false;
  let stopped = true;
  const timers: NodeJS.Timeout[] = [];
  let unsubscribe = () => {};

  async function claim(limit: number): Promise<SessionsTable[]> {
    // Look first: an empty claim then costs one indexed read instead of a write statement.
    const ids = await db
      .selectFrom('sessions')
      .select('id')
      .where('state', '=', QUEUED)
      .orderBy('queued_at')
      .orderBy('id')
      .limit(limit)
      .execute();
    if (ids.length === 0) return [];
    const now = clock();
    return db
      .updateTable('sessions')
      .set({ state: 'running', lease_owner: owner, lease_expires_at: now + leaseMs, started_at: now })
      .where(
        'id',
        'in',
        ids.map((row) => row.id),
      )
      .where('state', '=', QUEUED)
      .returningAll()
      .execute();
  }

  async function pump(): Promise<void> {
    if (stopped) return;
    if (pumping) {
      again = true;
      return;
    }
    pumping = true;
    try {
      do {
        again = false;
        while (!stopped && running.size < options.concurrency) {
          const sessions = await claim(Math.min(CLAIM_BATCH, options.concurrency - running.size));
          for (const session of sessions) {
            bus.publish(`account:${session.account_id}`);
            const task: Promise<void> = options
              .run(session, shutdown.signal)
              .catch((error: unknown) =>
                options.log.error({ err: error, session_id: session.id }, 'session runner crashed'),
              )
              .finally(() => {
                running.delete(task);
                void pump();
              });
            running.add(task);
          }
          if (sessions.length === 0) break;
        }
      } while (again && !stopped);
    } catch (error) {
      options.log.error({ err: error }, 'claiming sessions failed');
    } finally {
      pumping = false;
    }
  }

  async function heartbeat(): Promise<void> {
    if (running.size === 0) return;
    await db
      .updateTable('sessions')
      .set({ lease_expires_at: clock() + leaseMs })
      .where('lease_owner', '=', owner)
      .where('state', 'in', ['running', 'awaiting_assistance'])
      .execute()
      .catch((error: unknown) => options.log.error({ err: error }, 'lease heartbeat failed'));
  }

  return {
    start() {
      stopped = false;
      unsubscribe = bus.subscribe('work', () => void pump());
      timers.push(setInterval(() => void pump(), options.pollMs));
      timers.push(setInterval(() => void heartbeat(), Math.max(100, Math.floor(leaseMs / 3))));
      void pump();
    },
    async stop() {
      stopped = true;
      unsubscribe();
      for (const timer of timers) clearInterval(timer);
      shutdown.abort();
      await Promise.allSettled([...running]);
    },
    active: () => running.size,
  };
}
