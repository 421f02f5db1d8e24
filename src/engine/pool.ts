import { setMaxListeners } from 'node:events';
import type { Logger } from 'pino';
import type { Clock } from '../core/time.js';
import type { Bus } from '../events/bus.js';
import { singleFlight } from '../events/single-flight.js';
import { topics } from '../events/topics.js';
import { releaseLease, renewLeases } from '../sessions/transitions.js';
import type { Db } from '../store/db.js';
import type { SessionsTable } from '../store/schema.js';
import type { Saturation } from './admission.js';
import { leaseTerm } from './claim.js';

export interface WorkerPoolOptions {
  db: Db;
  /** Where heartbeats go (a connection of their own on PostgreSQL, see `Store.control`). */
  control: Db;
  bus: Bus;
  /** Takes up to `limit` queued sessions for this process (see `makeClaimer`). */
  claim(limit: number): Promise<SessionsTable[]>;
  /** False while the database is unreachable: no claiming then (it resumes by itself). */
  databaseUp(): boolean;
  /** While it names a reason, this process claims nothing (the sessions stay queued). */
  saturation?: Pick<Saturation, 'reason'>;
  clock: Clock;
  log: Logger;
  /** Lease owner id of this process. */
  owner: string;
  /** Sessions run at once [config.workerConcurrency]. */
  concurrency: number;
  /**
   * Sessions run at once that are not waiting for a person [config.activeLogins]: a burst is taken
   * in as fast as the process gets through it, not all at once.
   */
  activeLimit?: number;
  /**
   * Lease period, ms: a worker that stops renewing has its sessions declared lost within this. Leases
   * are written to end at 70 % of it and renewed every quarter of it (leaving 45 % of slack for a slow
   * heartbeat); recovery looks every tenth of it.
   */
  leaseMs: number;
  /** Fallback poll for queued work, ms. */
  pollMs: number;
  /**
   * `leaseLost` fires when this process no longer holds the session's lease (its runner must stop);
   * `waiting` is to be called when the login starts (+1) and stops (−1) waiting for a person.
   */
  run(
    session: SessionsTable,
    shutdown: AbortSignal,
    leaseLost: AbortSignal,
    waiting: (delta: 1 | -1) => void,
  ): Promise<void>;
}

export interface WorkerPool {
  start(): void;
  /** Stops claiming, aborts running sessions (they end as `shutdown`) and waits for them. */
  stop(): Promise<void>;
  /** Sessions running in this process. */
  active(): number;
  /** Sessions this process has claimed since it started. */
  claimed(): number;
  /** Claim passes this process held back because it was saturated, since it started. */
  heldBack(): number;
}

/** A claim pass held back by saturation looks again this soon, ms. */
const SATURATED_RETRY_MS = 100;

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
  /** Session id → what aborts its runner when the lease is lost. */
  const held = new Map<string, AbortController>();
  let claimedTotal = 0;
  let heldBackTotal = 0;
  /** Running sessions waiting for a person (not active). */
  let waitingNow = 0;
  const activeLimit = options.activeLimit ?? Number.POSITIVE_INFINITY;
  const waiting = (delta: 1 | -1) => {
    waitingNow += delta;
    // A login that now waits for a person frees an active place.
    if (delta === 1) void pump();
  };
  let retry: NodeJS.Timeout | null = null;
  let stopped = true;
  const timers: NodeJS.Timeout[] = [];
  let unsubscribe = () => {};

  /** Claims until the pool is full or nothing is queued; a wake-up during a pass causes one more. */
  async function fill(): Promise<void> {
    try {
      while (!stopped && running.size < options.concurrency) {
        // Back-pressure: a process already behind on the work it holds takes no more; the sessions
        // stay queued (for it a moment later, or for another worker) instead of failing here.
        if (options.saturation?.reason()) {
          heldBackTotal++;
          retry ??= setTimeout(() => {
            retry = null;
            void pump();
          }, SATURATED_RETRY_MS);
          break;
        }
        const room = Math.min(
          CLAIM_BATCH,
          options.concurrency - running.size,
          activeLimit - (running.size - waitingNow),
        );
        if (room <= 0) break;
        const sessions = await options.claim(room);
        claimedTotal += sessions.length;
        for (const session of sessions) {
          bus.publish(topics.account(session.account_id));
          const lost = new AbortController();
          held.set(session.id, lost);
          const task: Promise<void> = options
            .run(session, shutdown.signal, lost.signal, waiting)
            .catch(async (error: unknown) => {
              options.log.error({ err: error, session_id: session.id }, 'session runner crashed');
              // Give the lease up at once, so recovery ends the session (worker_lost) instead of it
              // staying active under a heartbeat that nobody acts on.
              await releaseLease(db, session.id, owner).catch(() => {});
            })
            .finally(() => {
              held.delete(session.id);
              running.delete(task);
              void pump();
            });
          running.add(task);
        }
        if (sessions.length === 0) break;
      }
    } catch (error) {
      options.log.error({ err: error }, 'claiming sessions failed');
    }
  }
  const filling = singleFlight(fill);
  const pump = async (): Promise<void> => {
    if (!stopped && options.databaseUp()) await filling();
  };

  /**
   * Renews the leases of the sessions this process is actually running, and only while they are still
   * ours (not expired and taken over). A session whose renewal fails has been declared lost: its
   * runner is stopped so the same bank login never runs twice.
   */
  async function heartbeat(): Promise<void> {
    if (held.size === 0) return;
    const now = clock();
    const ids = [...held.keys()];
    try {
      const kept = await renewLeases(options.control, { owner, ids, until: now + leaseTerm(leaseMs), now });
      for (const id of ids) if (!kept.has(id)) held.get(id)?.abort();
    } catch (error) {
      options.log.error({ err: error }, 'lease heartbeat failed');
    }
  }

  return {
    start() {
      stopped = false;
      unsubscribe = bus.subscribe(topics.work, () => void pump());
      timers.push(setInterval(() => void pump(), options.pollMs));
      timers.push(setInterval(() => void heartbeat(), Math.max(50, Math.floor(leaseMs / 4))));
      void pump();
    },
    async stop() {
      stopped = true;
      unsubscribe();
      for (const timer of timers) clearInterval(timer);
      if (retry) clearTimeout(retry);
      shutdown.abort();
      await Promise.allSettled([...running]);
    },
    active: () => running.size,
    claimed: () => claimedTotal,
    heldBack: () => heldBackTotal,
  };
}
