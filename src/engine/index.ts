import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import type { AssistanceWait } from '../assistance/reads.js';
import type { CodeLimit } from '../assistance/submit.js';
import type { ConnectorRegistry } from '../connectors/registry.js';
import type { Clock } from '../core/time.js';
import type { Bus } from '../events/bus.js';
import type { Transact } from '../events/outbox.js';
import { singleFlight } from '../events/single-flight.js';
import type { Waiters } from '../events/waiters.js';
import type { Cipher } from '../security/cipher.js';
import { releaseLeasesOfOthers } from '../sessions/transitions.js';
import type { Db, Dialect } from '../store/db.js';
import { makeSaturation, type SaturationOptions } from './admission.js';
import { makeClaimer } from './claim.js';
import { makeSessionKeeper, type SessionKeeper } from './keeper.js';
import type { Leadership } from './leader.js';
import { makeWorkerPool, type WorkerPool } from './pool.js';
import { recoverLostSessions } from './recovery.js';
import { runSession } from './runner.js';
import { scheduleDue } from './scheduler.js';
import { warnExpiringTrust } from './trust.js';
import type { WatchdogLimits } from './watchdog.js';

export interface EngineOptions {
  db: Db;
  /** Lease heartbeats' and code hand-offs' own connection (`Store.control`). */
  control: Db;
  dialect: Dialect;
  /** Who runs the scheduler tick (one process at a time). */
  leadership: Leadership;
  /** False while the database is unreachable (no claiming then). */
  databaseUp(): boolean;
  /** Bank id → most simultaneous logins across all workers (OTPILOT_BANK_CONCURRENCY). */
  bankLimits: ReadonlyMap<string, number>;
  /** Bank id → least time between two logins to it across all workers, ms (connectors' `limits`). */
  bankSpacing?: ReadonlyMap<string, number>;
  transact: Transact;
  bus: Bus;
  /** The process's waits on assistance requests, with their one batched fallback check. */
  waiters: Waiters<AssistanceWait>;
  cipher: Cipher;
  clock: Clock;
  random: () => number;
  registry: ConnectorRegistry;
  log: Logger;
  concurrency: number;
  /** Sessions run at once that are not waiting for a person [no limit] (OTPILOT_ACTIVE_LOGINS). */
  activeLogins?: number;
  leaseMs: number;
  /** When to stop claiming [loop lag over 1000 ms; no database backlog]. */
  saturation?: SaturationOptions;
  pollMs: number;
  schedulerTickMs: number;
  /** `trust_expiring` is emitted this long before an account's bank trust ends, ms. */
  trustWarningMs: number;
  /** Limits on connector calls and whole sessions (the watchdog). */
  limits: WatchdogLimits;
  /**
   * True when no other process can be running sessions on this store (SQLite): at start, every
   * session still held by an earlier process is known dead and is ended at once, not after its lease.
   */
  soleWorker: boolean;
  /** The code budget; the engine's own TOTP codes are not counted against it. */
  codeLimit: CodeLimit;
  /** Open persistent bank sessions this process keeps at most [100] (OTPILOT_PERSISTENT_SESSIONS). */
  persistentSessions?: number;
}

export interface Engine {
  readonly owner: string;
  /** The persistent bank sessions this process holds. */
  keeper: SessionKeeper;
  start(): Promise<void>;
  stop(): Promise<void>;
  pool: WorkerPool;
}

/** Scheduler + worker pool + lease recovery of one process. */
export function makeEngine(options: EngineOptions): Engine {
  const owner = `wkr_${hostname()}_${process.pid}_${randomBytes(4).toString('hex')}`;
  const log = options.log.child({ component: 'engine' });
  const keeper = makeSessionKeeper({
    db: options.db,
    transact: options.transact,
    clock: options.clock,
    log,
    owner,
    leaseMs: options.leaseMs,
    cap: options.persistentSessions ?? 100,
    callMs: options.limits.callMs,
  });
  const saturation = makeSaturation(options.saturation ?? { lagMs: 1000, backlog: () => 0, poolSize: 10 });
  const pool = makeWorkerPool({
    saturation,
    db: options.db,
    control: options.control,
    bus: options.bus,
    claim: makeClaimer({
      db: options.db,
      dialect: options.dialect,
      clock: options.clock,
      owner,
      leaseMs: options.leaseMs,
      bankLimits: options.bankLimits,
      ...(options.bankSpacing ? { bankSpacing: options.bankSpacing } : {}),
    }),
    databaseUp: options.databaseUp,
    clock: options.clock,
    log,
    owner,
    concurrency: options.concurrency,
    ...(options.activeLogins ? { activeLimit: options.activeLogins } : {}),
    leaseMs: options.leaseMs,
    pollMs: options.pollMs,
    run: (session, shutdown, leaseLost, waiting) =>
      runSession({ ...options, owner, log, keeper, saturation, waiting }, session, shutdown, leaseLost),
  });
  const timers: NodeJS.Timeout[] = [];
  /** A periodic task that never overlaps itself (a slow pass skips the ticks that come meanwhile). */
  const guard = (what: string, task: () => Promise<unknown>) => {
    const once = singleFlight(() => task().catch((error: unknown) => log.error({ err: error }, `${what} failed`)), {
      whenBusy: 'skip',
    });
    return () => void once();
  };

  return {
    owner,
    keeper,
    pool,
    async start() {
      // Try for the scheduler lock at once, so a lone worker schedules from its first tick.
      await options.leadership.holds();
      if (options.soleWorker) await releaseLeasesOfOthers(options.db, owner);
      await recoverLostSessions({ ...options, log });
      timers.push(
        setInterval(
          guard('scheduler tick', async () => {
            if (!options.databaseUp() || !(await options.leadership.holds())) return;
            await scheduleDue(options);
            await warnExpiringTrust({ ...options, leadMs: options.trustWarningMs });
          }),
          options.schedulerTickMs,
        ),
      );
      timers.push(
        setInterval(
          // Every worker looks (each ending is a compare-and-set), so recovery needs no leader.
          guard('lease recovery', async () => {
            if (options.databaseUp()) await recoverLostSessions({ ...options, log });
          }),
          Math.max(50, Math.floor(options.leaseMs / 10)),
        ),
      );
      saturation.start();
      pool.start();
      keeper.start();
    },
    async stop() {
      for (const timer of timers) clearInterval(timer);
      saturation.stop();
      await pool.stop();
      // After the pool: no scrape holds a kept session any more; each is closed and its claim cleared.
      await keeper.stop();
      await options.leadership.release();
    },
  };
}
