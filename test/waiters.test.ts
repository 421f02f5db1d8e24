import { afterEach, describe, expect, it } from 'vitest';
import { assistanceChecks, findRequest } from '../src/assistance/reads.js';
import { closeRequest, openRequest, takeCode } from '../src/assistance/requests.js';
import { submitCode } from '../src/assistance/submit.js';
import { makeMemoryBus } from '../src/events/bus.js';
import { makeTransact } from '../src/events/outbox.js';
import { makeWaiters, type WaitTimer } from '../src/events/waiters.js';
import { EMPTY_BANK, type EngineHarness, pendingOf, RIGHT, SIX_DIGITS, startEngineHarness } from './helpers/engine.js';
import { eventually } from './helpers/flows.js';

/*
 * The process's waits on requests and their one batched fallback: a waiter whose wake-up is lost
 * is still woken, by one query shared with every other wait due then, on a timer the test drives.
 */

let h: EngineHarness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

const POLL_MS = 200;

/** A timer that moves only when the test says: `advance` fires what fell due, in order. */
function manualTimer(): WaitTimer & { advance(ms: number): void } {
  let now = 0;
  const pending = new Set<{ at: number; fire: () => void }>();
  return {
    now: () => now,
    set(fire, ms) {
      const entry = { at: now + ms, fire };
      pending.add(entry);
      return entry;
    },
    clear: (handle) => void pending.delete(handle as { at: number; fire: () => void }),
    advance(ms) {
      now += ms;
      for (const entry of [...pending].sort((a, b) => a.at - b.at)) {
        if (entry.at > now || !pending.delete(entry)) continue;
        entry.fire();
      }
    },
  };
}

/** The harness's worker waits through its own registry, on a hand-driven timer. */
async function harnessWithManualFallback() {
  h = await startEngineHarness();
  const timer = manualTimer();
  const waiters = makeWaiters({
    bus: h.t.server.bus,
    checks: assistanceChecks(h.t.server.store.db),
    batchMs: POLL_MS,
    timer,
  });
  h.deps.waiters = waiters;
  h.deps.pollMs = POLL_MS;
  const tried: string[] = [];
  h.script = async (ctx) => {
    await ctx.requestCode(SIX_DIGITS, async (code) => {
      tried.push(code);
      return { outcome: code === RIGHT ? 'accepted' : 'rejected' };
    });
    return EMPTY_BANK;
  };
  return { harness: h, timer, waiters, tried };
}

/** Submits a code through the real path, but its wake-up goes to a bus nobody listens to: a lost NOTIFY. */
async function submitSilently(harness: EngineHarness, code: string) {
  const { db, dialect } = harness.t.server.store;
  const transact = makeTransact({ db, dialect, bus: makeMemoryBus(), clock: harness.deps.clock });
  const source = { via: 'api' as const, orgId: harness.t.orgId, actor: { type: 'system' as const, id: null } };
  const result = await submitCode({ ...harness.deps, transact }, source, { accountId: harness.accountId }, code);
  expect(result.ok).toBe(true);
}

describe('the batched fallback', () => {
  it('wakes a login whose wake-up was lost, on the next fallback check', async () => {
    const { harness, timer, waiters, tried } = await harnessWithManualFallback();
    const run = harness.run();
    await pendingOf(harness);
    await eventually(
      async () => waiters.stats().waiting,
      (n) => n === 1,
    );
    await submitSilently(harness, RIGHT);
    // Nothing rang: the login still waits, and no fallback query has run yet.
    expect(tried).toEqual([]);
    expect(waiters.stats()).toMatchObject({ waiting: 1, checks: 0 });

    timer.advance(POLL_MS * 1.25);
    await run.done;
    expect(tried).toEqual([RIGHT]);
    expect(waiters.stats()).toMatchObject({ waiting: 0, checks: 1, wokenByCheck: 1 });
    const session = await harness.t.server.store.db
      .selectFrom('sessions')
      .select('state')
      .where('id', '=', await run.sessionId)
      .executeTakeFirstOrThrow();
    expect(session.state).toBe('succeeded');
  });

  it('checks many waits with one query and wakes only those whose row changed', async () => {
    const { harness, timer, waiters, tried } = await harnessWithManualFallback();
    const run = harness.run();
    const request = await pendingOf(harness);
    await eventually(
      async () => waiters.stats().waiting,
      (n) => n === 1,
    );
    // 100 more waits on the login's request (still pending, no code) and 299 on requests that do not exist.
    const wait = (key: string) =>
      waiters.waiter({ kind: 'code', key, topic: `test:${key}`, fallbackMs: POLL_MS, timeoutMs: 3_600_000 });
    const same = Array.from({ length: 100 }, () => wait(request.id));
    const gone = Array.from({ length: 299 }, (_, i) => wait(`asr_missing_${i}`));

    timer.advance(POLL_MS * 1.25);
    expect(await Promise.all(gone.map((bell) => bell.promise))).toEqual(gone.map(() => true));
    // One query for 300 keys; the 101 waits on the pending request were not woken.
    expect(waiters.stats()).toMatchObject({ checks: 1, keysChecked: 300, waiting: 101, wokenByCheck: 299 });

    await submitSilently(harness, RIGHT);
    // Backed off: the next check comes after twice the interval (±25 %), one query for the one key.
    timer.advance(POLL_MS * 2.5 + POLL_MS);
    expect(await Promise.all(same.map((bell) => bell.promise))).toEqual(same.map(() => true));
    await run.done;
    expect(tried).toEqual([RIGHT]);
    expect(waiters.stats()).toMatchObject({ checks: 2, keysChecked: 301, waiting: 0, wokenByCheck: 400 });
  });
});

describe('taking a code', () => {
  it('hands a code to exactly one of many racing takers, and none once the request closed', async () => {
    h = await startEngineHarness();
    const harness = h;
    const { db } = harness.t.server.store;
    const { cipher } = harness.deps;
    const session = await harness.claim();
    for (let round = 0; round < 5; round++) {
      const now = harness.deps.clock();
      const request = await harness.t.server.transact((trx, uow) =>
        openRequest(trx, uow, {
          orgId: harness.t.orgId,
          accountId: harness.accountId,
          sessionId: session.id,
          type: 'otp',
          descriptor: { ...SIX_DIGITS, channel: null },
          maxAttempts: 3,
          now,
          expiresAt: now + 600_000,
        }),
      );
      const code = `${round}${RIGHT.slice(1)}`;
      const source = { via: 'api' as const, orgId: harness.t.orgId, actor: { type: 'system' as const, id: null } };
      expect((await submitCode(harness.deps, source, { accountId: harness.accountId }, code)).ok).toBe(true);

      // Odd rounds: the request is withdrawn while the takers race for its code.
      const close = () =>
        harness.t.server.transact((trx, uow) =>
          closeRequest(trx, uow, request, { state: 'cancelled', reason: 'test', at: harness.deps.clock() }),
        );
      const takers = Array.from({ length: 12 }, () => takeCode(db, cipher, request.id));
      const [closed, ...taken] = await Promise.all([round % 2 === 1 ? close() : Promise.resolve(false), ...takers]);
      const codes = taken.filter((t) => typeof t === 'object');
      if (closed) expect(codes.length).toBeLessThanOrEqual(1);
      else expect(codes).toHaveLength(1);
      for (const got of codes) expect(got).toMatchObject({ code, via: 'api' });
      for (const other of taken.filter((t) => typeof t !== 'object')) expect(['none', 'closed']).toContain(other);
      // Nothing left to take, and a closed request never yields a code.
      if (!closed) await close();
      expect(await takeCode(db, cipher, request.id)).toBe('closed');
      expect((await findRequest(db, request.id))?.state).toBe('cancelled');
    }
  });
});
