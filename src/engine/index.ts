import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import type { ConnectorRegistry } from '../connectors/registry.js';
import type { Clock } from '../core/time.js';
import type { Bus } from '../events/bus.js';
import type { Transact } from '../events/outbox.js';
import type { Cipher } from '../security/cipher.js';
import type { Db } from '../store/db.js';
import { makeWorkerPool, type WorkerPool } from './pool.js';
import { recoverLostSessions } from './recovery.js';
import { runSession } from './runner.js';
import { scheduleDue } from './scheduler.js';
import { warnExpiringTrust } from './trust.js';

export interface EngineOptions {
  db: Db;
  transact: Transact;
  bus: Bus;
  cipher: Cipher;
  clock: Clock;
  random: () => number;
  registry: ConnectorRegistry;
  log: Logger;
  concurrency: number;
  leaseMs: number;
  pollMs: number;
  schedulerTickMs: number;
  /** `trust_expiring` is emitted this long before an account's bank trust ends, ms. */
  trustWarningMs: number;
}

export interface Engine {
  readonly owner: string;
  start(): Promise<void>;
  stop(): Promise<void>;
  pool: WorkerPool;
}

/** Scheduler + worker pool + lease recovery of one process. */
export function makeEngine(options: EngineOptions): Engine {
  const owner = `wkr_${hostname()}_${process.pid}_${randomBytes(4).toString('hex')}`;
  const log = options.log.child({ component: 'engine' });
  const pool = makeWorkerPool({
    db: options.db,
    bus: options.bus,
    clock: options.clock,
    log,
    owner,
    concurrency: options.concurrency,
    leaseMs: options.leaseMs,
    pollMs: options.pollMs,
    run: (session, shutdown, leaseLost) => runSession({ ...options, owner, log }, session, shutdown, leaseLost),
  });
  const timers: NodeJS.Timeout[] = [];
  const guard = (what: string, task: () => Promise<unknown>) => () =>
    void task().catch((error: unknown) => log.error({ err: error }, `${what} failed`));

  return {
    owner,
    pool,
    async start() {
      await recoverLostSessions({ ...options, log });
      timers.push(
        setInterval(
          guard('scheduler tick', async () => {
            await scheduleDue(options);
            await warnExpiringTrust({ ...options, leadMs: options.trustWarningMs });
          }),
          options.schedulerTickMs,
        ),
      );
      timers.push(
        setInterval(
          guard('lease recovery', () => recoverLostSessions({ ...options, log })),
          Math.max(100, Math.floor(options.leaseMs / 2)),
        ),
      );
      pool.start();
    },
    async stop() {
      for (const timer of timers) clearInterval(timer);
      await pool.stop();
    },
  };
}
