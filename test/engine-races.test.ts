import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { findRequest, findSubmission } from '../src/assistance/reads.js';
import { submitCode } from '../src/assistance/submit.js';
import { recoverLostSessions } from '../src/engine/recovery.js';
import {
  EMPTY_BANK,
  type EngineHarness,
  gate,
  pendingOf,
  RIGHT,
  SIX_DIGITS,
  startEngineHarness,
} from './helpers/engine.js';
import { eventually } from './helpers/flows.js';

/*
 * The hand-off's races, driven directly below HTTP: a real store and bus, `runSession` with a
 * scripted connector, and the API (or the domain functions) on the other side.
 */

let h: EngineHarness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

async function sessionRow(harness: EngineHarness, id: string) {
  return harness.t.server.store.db.selectFrom('sessions').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
}

const source = (harness: EngineHarness) => ({
  via: 'api' as const,
  orgId: harness.t.orgId,
  actor: { type: 'system' as const, id: null },
});

describe('the hand-off at the deadline', () => {
  it('takes a code stored a millisecond before the deadline, and refuses one at the deadline', async () => {
    h = await startEngineHarness();
    const harness = h;
    harness.clock.frozen = Date.now();
    harness.script = async (ctx) => {
      await ctx.requestCode(SIX_DIGITS, async (code) => ({ outcome: code === RIGHT ? 'accepted' : 'rejected' }));
      return EMPTY_BANK;
    };
    const first = harness.run();
    const request = await pendingOf(harness);

    harness.clock.frozen = request.expires_at;
    const late = await submitCode(harness.deps, source(harness), { accountId: harness.accountId }, RIGHT);
    expect(late).toMatchObject({ ok: false, reason: 'no_pending' });

    harness.clock.frozen = request.expires_at - 1;
    const inTime = await submitCode(harness.deps, source(harness), { accountId: harness.accountId }, RIGHT);
    expect(inTime.ok).toBe(true);
    // The deadline passes before the bank answers: a code that arrived in time is still judged.
    harness.clock.frozen = request.expires_at + 1;
    await first.done;
    expect((await sessionRow(harness, await first.sessionId)).state).toBe('succeeded');
    expect((await findRequest(harness.t.server.store.db, request.id))?.state).toBe('fulfilled');
    if (inTime.ok)
      expect((await findSubmission(harness.t.server.store.db, inTime.submissionId))?.verdict).toBe('accepted');

    // A request nobody answers expires at its deadline, on the service clock.
    const second = harness.run();
    const next = await pendingOf(harness);
    harness.clock.frozen = next.expires_at;
    harness.wake();
    await second.done;
    const ended = await sessionRow(harness, await second.sessionId);
    expect(ended).toMatchObject({ state: 'failed', failure_category: 'assistance_expired' });
    expect((await findRequest(harness.t.server.store.db, next.id))?.state).toBe('expired');
  });
});

describe('codes racing', () => {
  it('lets exactly one of two simultaneous codes reach the bank', async () => {
    h = await startEngineHarness();
    const harness = h;
    const bank = gate<'accepted'>();
    const tried: string[] = [];
    harness.script = async (ctx) => {
      await ctx.requestCode(SIX_DIGITS, async (code) => {
        tried.push(code);
        return { outcome: await bank.promise };
      });
      return EMPTY_BANK;
    };
    const run = harness.run();
    await pendingOf(harness);
    const [a, b] = await Promise.all([
      harness.t.api.post(`/v1/accounts/${harness.accountId}/otp`, { code: '111111' }),
      harness.t.api.post(`/v1/accounts/${harness.accountId}/otp`, { code: '222222' }),
    ]);
    expect([a.status, b.status].sort()).toEqual([202, 409]);
    expect([a, b].find((r) => r.status === 409)?.body.error.code).toBe('CODE_IN_FLIGHT');
    await eventually(
      async () => tried.length,
      (n) => n === 1,
    );
    bank.open('accepted');
    await run.done;
    expect(tried).toHaveLength(1);
    expect((await sessionRow(harness, await run.sessionId)).state).toBe('succeeded');
  });
});

/** A bank that holds each code until the test opens `bank`; `judging` opens when it has one. */
function slowBank(harness: EngineHarness) {
  const bank = gate<'accepted'>();
  const judging = gate();
  harness.script = async (ctx) => {
    await ctx.requestCode(SIX_DIGITS, async () => {
      judging.open();
      return { outcome: await bank.promise };
    });
    return EMPTY_BANK;
  };
  return { bank, judging };
}

describe('a request closed while the bank judges its code', () => {
  it('reports the submission withdrawn when the session is cancelled mid-verdict, and never fulfils it', async () => {
    h = await startEngineHarness();
    const harness = h;
    const { bank, judging } = slowBank(harness);
    const run = harness.run();
    const request = await pendingOf(harness);
    const answer = harness.t.api.post(`/v1/accounts/${harness.accountId}/otp?wait=true`, { code: RIGHT });
    await judging.promise;
    const cancelled = await harness.t.api.post(`/v1/sessions/${await run.sessionId}/cancel`);
    expect(cancelled.status).toBe(202);
    // The runner stops waiting for the bank at once; the bank's late yes changes nothing.
    await run.done;
    bank.open('accepted');
    const reply = await answer;
    expect(reply.status).toBe(200);
    expect(reply.body.outcome).toBe('withdrawn');
    expect(reply.body.assistance_request).toMatchObject({
      state: 'cancelled',
      resolution: { reason: 'session_cancelled' },
    });
    expect((await sessionRow(harness, await run.sessionId)).state).toBe('cancelled');
    expect((await findRequest(harness.t.server.store.db, request.id))?.state).toBe('cancelled');
  });

  it('ends a session whose worker lost its lease mid-verdict once: recovery’s ending stands', async () => {
    h = await startEngineHarness();
    const harness = h;
    const { bank, judging } = slowBank(harness);
    const run = harness.run();
    const request = await pendingOf(harness);
    const submitted = await submitCode(harness.deps, source(harness), { accountId: harness.accountId }, RIGHT);
    await judging.promise;
    // The worker stops renewing (a long pause, a cut network): its lease runs out and recovery ends it.
    harness.clock.offset += 700_000;
    // (The server's own periodic recovery may get there first; either ends it the same way.)
    await recoverLostSessions({
      db: harness.t.server.store.db,
      transact: harness.t.server.transact,
      clock: () => harness.clock.now(),
      log: pino({ level: 'silent' }),
    });
    expect((await sessionRow(harness, await run.sessionId)).state).toBe('failed');
    bank.open('accepted');
    await run.done;
    const session = await sessionRow(harness, await run.sessionId);
    expect(session).toMatchObject({ state: 'failed', failure_category: 'worker_lost' });
    expect(await findRequest(harness.t.server.store.db, request.id)).toMatchObject({
      state: 'cancelled',
      resolution_reason: 'worker_lost',
    });
    if (submitted.ok)
      expect((await findSubmission(harness.t.server.store.db, submitted.submissionId))?.verdict).toBe('withdrawn');
    const fulfilled = await harness.t.server.store.db
      .selectFrom('events')
      .select('id')
      .where('account_id', '=', harness.accountId)
      .where('type', '=', 'assistance_fulfilled')
      .execute();
    expect(fulfilled).toHaveLength(0);
  });
});

describe('the watchdog', () => {
  it('ends a login whose connector hangs and ignores its abort signal (connector_timeout); the account is not blocked', async () => {
    h = await startEngineHarness({ limits: { callMs: 300 } });
    const harness = h;
    harness.script = () => new Promise(() => {});
    const run = harness.run();
    await run.done;
    const session = await sessionRow(harness, await run.sessionId);
    expect(session).toMatchObject({ state: 'failed', failure_category: 'connector_timeout', lease_owner: null });
    const account = (await harness.t.api.get(`/v1/accounts/${harness.accountId}`)).body;
    expect(account.status).not.toBe('blocked');
    // The next login runs as usual.
    harness.script = async () => EMPTY_BANK;
    const next = harness.run();
    await next.done;
    expect((await sessionRow(harness, await next.sessionId)).state).toBe('succeeded');
  });

  it('gives the bank the call limit to judge a code, then closes the request connector_timeout', async () => {
    h = await startEngineHarness({ limits: { callMs: 300 } });
    const harness = h;
    harness.script = async (ctx) => {
      await ctx.requestCode(SIX_DIGITS, () => new Promise(() => {}));
      return EMPTY_BANK;
    };
    const run = harness.run();
    const request = await pendingOf(harness);
    const reply = await harness.t.api.post(`/v1/accounts/${harness.accountId}/otp?wait=true`, { code: RIGHT });
    expect(reply.body.outcome).toBe('withdrawn');
    await run.done;
    expect(await sessionRow(harness, await run.sessionId)).toMatchObject({
      state: 'failed',
      failure_category: 'connector_timeout',
    });
    expect(await findRequest(harness.t.server.store.db, request.id)).toMatchObject({
      state: 'cancelled',
      resolution_reason: 'connector_timeout',
    });
  });

  it('does not count the wait for a person against a call, but ends a session past its own limit', async () => {
    // A session limit long enough for a busy machine to open the request well within it.
    h = await startEngineHarness({ limits: { callMs: 200, sessionMs: 5000 } });
    const harness = h;
    harness.script = async (ctx) => {
      await ctx.requestCode(SIX_DIGITS, async () => ({ outcome: 'accepted' }));
      return EMPTY_BANK;
    };
    const run = harness.run();
    const request = await pendingOf(harness);
    // Nobody answers; the login's own call limit (200 ms) is paused while it waits.
    await run.done;
    const session = await sessionRow(harness, await run.sessionId);
    expect(session).toMatchObject({ state: 'failed', failure_category: 'connector_timeout' });
    expect(session.failure_message).toContain('session');
    expect((await findRequest(harness.t.server.store.db, request.id))?.state).toBe('cancelled');
  });
});
