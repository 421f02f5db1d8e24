import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeBankFetch } from '../src/connectors/bank-http.js';
import { ConnectorError } from '../src/connectors/sdk.js';
import { afterFailure } from '../src/core/failure-policy.js';
import { blameOverload, makeSaturation } from '../src/engine/admission.js';
import { makeClaimer } from '../src/engine/claim.js';
import { makeWorkerPool } from '../src/engine/pool.js';
import { createSandboxAccount, eventually, scrape, sessionEnd } from './helpers/flows.js';
import { startTestServer, type TestServer } from './helpers/server.js';

/*
 * Under a burst no login is lost: work beyond what the process can run waits (in the queue, in the
 * database pool, in the bank agent) instead of failing, and a failure caused by our own overload is
 * not blamed on the bank.
 */

/** Blocks this event loop for `ms` (what a saturated worker looks like from inside). */
function busy(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // spin
  }
}

/** A worker pool's store, bus and claimer for these tests, owned by `owner`. */
function poolBasics(t: TestServer, owner: string) {
  const store = t.server.store;
  return {
    db: store.db,
    control: store.control,
    bus: t.server.bus,
    claim: makeClaimer({
      db: store.db,
      dialect: store.dialect,
      clock: Date.now,
      owner,
      leaseMs: 30_000,
      bankLimits: new Map(),
    }),
    databaseUp: () => true,
    clock: Date.now,
    log: pino({ level: 'silent' }),
    owner,
  };
}

describe('a burst of logins on a small worker', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({
      env: {
        // Far fewer slots, database connections and bank connections than logins.
        OTPILOT_WORKER_CONCURRENCY: '40',
        OTPILOT_PG_POOL_SIZE: '2',
        OTPILOT_BANK_CONNECTIONS: '4',
      },
      // Every call of the `slow` users takes this long at the (in-process) bank.
      sandboxBank: { slowMs: 20 },
    });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('runs every one of 200 logins that fall due at once to success', { timeout: 240_000 }, async () => {
    const ids: string[] = [];
    for (let start = 0; start < 200; start += 20) {
      const batch = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          createSandboxAccount(t.api, (start + i) % 10 === 0 ? 'alice' : 'slow', { schedule: 'every 1h' }),
        ),
      );
      ids.push(...batch.map((a) => a.id));
    }
    // Due in the same instant; the real scheduler queues them.
    const db = t.server.store.db;
    await db.updateTable('accounts').set({ next_run_at: Date.now() }).where('id', 'in', ids).execute();
    const ended = await eventually(
      () =>
        db
          .selectFrom('sessions')
          .select(['state', 'failure_category', 'failure_message'])
          .where('account_id', 'in', ids)
          .execute(),
      (rows) => rows.length >= ids.length && rows.every((r) => ['succeeded', 'failed', 'cancelled'].includes(r.state)),
      200_000,
    );
    const lost = ended.filter((r) => r.state !== 'succeeded');
    expect(lost).toEqual([]);
    expect(ended).toHaveLength(ids.length);
  });
});

describe('claims stop while the process is saturated', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer();
    // The server's own engine would claim the sessions; this test's pool is the only claimer.
    await t.server.engine.stop();
  });
  afterAll(async () => {
    await t?.close();
  });

  it('takes nothing while database work is queued beyond the pool, and claims once it drains', async () => {
    const sessions: string[] = [];
    for (let i = 0; i < 5; i++) sessions.push(await scrape(t.api, (await createSandboxAccount(t.api, 'alice')).id));
    let backlog = 3;
    const store = t.server.store;
    const pool = makeWorkerPool({
      ...poolBasics(t, 'wkr_saturated'),
      saturation: makeSaturation({ lagMs: 250, backlog: () => backlog, poolSize: 2 }),
      concurrency: 10,
      leaseMs: 30_000,
      pollMs: 1000,
      run: async () => {},
    });
    pool.start();
    try {
      // Several passes held back, none claimed: the sessions stay queued.
      await eventually(
        async () => pool.heldBack(),
        (n) => n >= 3,
      );
      expect(pool.claimed()).toBe(0);
      const queued = await store.db
        .selectFrom('sessions')
        .select('state')
        .where('id', 'in', sessions)
        .where('state', '=', 'queued')
        .execute();
      expect(queued).toHaveLength(5);
      backlog = 0;
      await eventually(
        async () => pool.claimed(),
        (n) => n === 5,
      );
    } finally {
      await pool.stop();
    }
  });

  it('runs no more active logins than its limit; one waiting for a person frees its place', async () => {
    const sessions: string[] = [];
    for (let i = 0; i < 4; i++) sessions.push(await scrape(t.api, (await createSandboxAccount(t.api, 'alice')).id));
    const held: { waiting: (delta: 1 | -1) => void; end: () => void }[] = [];
    const pool = makeWorkerPool({
      ...poolBasics(t, 'wkr_active'),
      concurrency: 10,
      activeLimit: 2,
      leaseMs: 30_000,
      pollMs: 1000,
      run: (_session, _shutdown, _lost, waiting) =>
        new Promise<void>((resolve) => {
          held.push({ waiting, end: resolve });
        }),
    });
    pool.start();
    try {
      await eventually(
        async () => pool.claimed(),
        (n) => n === 2,
      );
      expect(pool.active()).toBe(2);
      // One login now waits for a code: the pool takes one more.
      held[0]!.waiting(1);
      await eventually(
        async () => pool.claimed(),
        (n) => n === 3,
      );
      // One ends: one more again (the last queued one).
      held[1]!.end();
      await eventually(
        async () => pool.claimed(),
        (n) => n === 4,
      );
    } finally {
      for (const h of held) h.end();
      await pool.stop();
    }
  });

  it('sees a blocked event loop as saturated', () => {
    const saturation = makeSaturation({ lagMs: 100, backlog: () => 0, poolSize: 10 });
    saturation.start();
    try {
      const began = performance.now();
      expect(saturation.reason()).toBeNull();
      busy(300);
      expect(saturation.reason()).toBe('loop_lag');
      expect(saturation.saturatedSince(began)).toBe(true);
    } finally {
      saturation.stop();
    }
  });
});

describe('a bank call queued in our process', () => {
  it('is not timed out by its wait: the answer timeout starts when the call goes out', async () => {
    let open = 0;
    let most = 0;
    // A slow bank: each answer 100 ms after the call arrives.
    const bank = createServer((_request, response) => {
      setTimeout(() => response.end('{"ok":true}'), 100);
    });
    bank.on('connection', (socket) => {
      most = Math.max(most, ++open);
      socket.on('close', () => open--);
    });
    await new Promise<void>((resolve) => bank.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(bank.address() as AddressInfo).port}/`;
    try {
      const bankFetch = makeBankFetch({ connectionsPerOrigin: 1, connectTimeoutMs: 1000, answerTimeoutMs: 1000 });
      const started = performance.now();
      const answers = await Promise.all(
        Array.from({ length: 15 }, async () => {
          const response = await bankFetch(url);
          return (await response.json()) as unknown;
        }),
      );
      // 15 calls one after the other on one connection: the last waited longer than the answer
      // timeout in this process, and still got its answer.
      expect(performance.now() - started).toBeGreaterThan(1000);
      expect(answers).toEqual(Array.from({ length: 15 }, () => ({ ok: true })));
      expect(most).toBe(1);
    } finally {
      bank.closeAllConnections();
      await new Promise((resolve) => bank.close(resolve));
    }
  });
});

describe('our overload is not blamed on the bank', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({
      env: { OTPILOT_SATURATION_LAG_MS: '100' },
      // A bank call that fails while this process is stalled: the stall is ours.
      connectors: (builtin) =>
        builtin.map((connector) =>
          connector.id !== 'sandbox'
            ? connector
            : {
                ...connector,
                login: async (ctx) => {
                  if (!ctx.credentials.username?.startsWith('stalled+')) return connector.login(ctx);
                  busy(400);
                  throw new ConnectorError('bank_unavailable', 'the bank could not be reached');
                },
              },
        ),
    });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('fails the login `overloaded`, which does not count toward the block', async () => {
    const account = await createSandboxAccount(t.api, 'stalled', { fatal_threshold: 1 });
    const session = await sessionEnd(t.api, await scrape(t.api, account.id));
    expect(session.state).toBe('failed');
    expect(session.failure_category).toBe('overloaded');
    const row = await t.server.store.db
      .selectFrom('accounts')
      .select(['consecutive_failures', 'blocked_at'])
      .where('id', '=', account.id)
      .executeTakeFirstOrThrow();
    expect(row).toEqual({ consecutive_failures: 0, blocked_at: null });
  });

  it('leaves other failures as they are, and a bank failure on a calm process is the bank’s', () => {
    const failure = { state: 'failed', category: 'bank_unavailable', message: 'down' } as const;
    expect(blameOverload(failure, false)).toEqual(failure);
    expect(blameOverload({ state: 'failed', category: 'invalid_credentials', message: 'no' }, true).state).toBe(
      'failed',
    );
    expect(blameOverload(failure, true)).toMatchObject({ category: 'overloaded' });
    expect(afterFailure('overloaded', { consecutive_failures: 2, backoff_level: 0, blocked: false }, 3)).toMatchObject({
      consecutiveFailures: 2,
      block: null,
      runAgainNow: true,
    });
  });
});
