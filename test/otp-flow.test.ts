import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  auditOf,
  createSandboxAccount,
  latestCode,
  pendingRequest,
  scrape,
  sessionEnd,
  startAssistedLogin,
  statusUntil,
} from './helpers/flows.js';
import { startTestServer, type TestServer } from './helpers/server.js';

let t: TestServer;

beforeAll(async () => {
  t = await startTestServer();
});
afterAll(async () => {
  await t?.close();
});

/** Everything the store holds about codes must be gone once a request is closed. */
async function codeColumns(requestId: string) {
  return t.server.store.db
    .selectFrom('assistance_requests')
    .select(['code_enc', 'code_submitted_at'])
    .where('id', '=', requestId)
    .executeTakeFirstOrThrow();
}

describe('the OTP hand-off', () => {
  it('completes an assisted login with the right code and stores the movements', async () => {
    const { api } = t;
    const { account, sessionId, request } = await startAssistedLogin(api);
    expect(request).toMatchObject({
      state: 'pending',
      attempts: 0,
      max_attempts: 2,
      descriptor: { length: 6, type: 'numeric', purpose: 'login' },
      session_id: sessionId,
    });
    expect(request.descriptor.prompt).toMatch(/^Enter the code we sent to •••• \d{4}$/);
    const otp = await api.get(`/v1/accounts/${account.id}/otp`);
    expect(otp.body.assistance_request.id).toBe(request.id);

    const code = await latestCode(api, account.username);
    const submitted = await api.post(`/v1/accounts/${account.id}/otp?wait=true`, { code, request_id: request.id });
    expect(submitted.status).toBe(200);
    expect(submitted.body).toMatchObject({ submitted: true, request_id: request.id, outcome: 'accepted' });
    expect(submitted.body.assistance_request).toMatchObject({
      state: 'fulfilled',
      resolution: { via: 'api', reason: 'accepted' },
    });

    const session = await sessionEnd(api, sessionId);
    expect(session.state).toBe('succeeded');
    expect(session.movements_new).toBeGreaterThan(0);
    expect(session.stages.map((s: { name: string }) => s.name)).toEqual(
      expect.arrayContaining(['login', 'awaiting_assistance', 'succeeded']),
    );
    expect((await collectMovements(account.id)).length).toBe(session.movements_new);
    expect(await codeColumns(request.id)).toEqual({ code_enc: null, code_submitted_at: null });

    const status = (await api.get(`/v1/accounts/${account.id}/status`)).body;
    expect(status).toMatchObject({ status: 'idle', session_running: false, pending_assistance: null });
    expect(status.last_success_at).not.toBeNull();

    // Audited: who, how, outcome; never the code.
    const audit = await auditOf(t.server.store.db, account.id, 'otp.submit');
    expect(audit).toHaveLength(1);
    expect(audit[0]).toMatchObject({ actor_type: 'api_key', outcome: 'submitted', target_id: request.id });
    expect(JSON.stringify(audit)).not.toContain(code);
  });

  it('counts a wrong code, keeps the request pending, then accepts the right one', async () => {
    const { api } = t;
    const { account, sessionId, request } = await startAssistedLogin(api);
    const right = await latestCode(api, account.username);
    const wrong = right === '000000' ? '111111' : '000000';

    const first = await api.post(`/v1/accounts/${account.id}/otp?wait=true`, { code: wrong });
    expect(first.body).toMatchObject({
      outcome: 'rejected',
      assistance_request: { state: 'pending', attempts: 1, last_error: 'rejected' },
    });
    const between = await pendingRequest(api, account.id);
    expect(between).toMatchObject({ id: request.id, state: 'pending', attempts: 1, code_in_flight: false });

    const second = await api.post(`/v1/accounts/${account.id}/otp?wait=true`, { code: right });
    expect(second.body).toMatchObject({ outcome: 'accepted', assistance_request: { state: 'fulfilled', attempts: 1 } });
    expect((await sessionEnd(api, sessionId)).state).toBe('succeeded');
  });

  it('refuses a malformed code with CODE_FORMAT without reaching the bank', async () => {
    const { api } = t;
    const { account, sessionId, request } = await startAssistedLogin(api);
    // Three malformed codes: had any reached the bank, its three attempts would be gone and the login locked.
    for (const code of ['12345', 'abcdef', '1234567']) {
      const reply = await api.post(`/v1/accounts/${account.id}/otp`, { code });
      expect(reply.status).toBe(422);
      expect(reply.body.error.code).toBe('CODE_FORMAT');
    }
    expect((await api.get(`/v1/accounts/${account.id}/otp`)).body.assistance_request).toMatchObject({
      id: request.id,
      attempts: 0,
    });
    // Spaces and dashes are dropped before the check.
    const code = await latestCode(api, account.username);
    const spaced = `${code.slice(0, 3)} - ${code.slice(3)}`;
    const reply = await api.post(`/v1/accounts/${account.id}/otp?wait=true`, { code: spaced });
    expect(reply.body.outcome).toBe('accepted');
    expect((await sessionEnd(api, sessionId)).state).toBe('succeeded');
  });

  it('accepts exactly one of two codes sent at once', async () => {
    const { api } = t;
    const { account, sessionId, request } = await startAssistedLogin(api);
    const code = await latestCode(api, account.username);
    const replies = await Promise.all([
      api.post(`/v1/accounts/${account.id}/otp`, { code, request_id: request.id }),
      api.post(`/v1/accounts/${account.id}/otp`, { code, request_id: request.id }),
    ]);
    const statuses = replies.map((r) => r.status).sort();
    expect(statuses).toEqual([202, 409]);
    const refused = replies.find((r) => r.status === 409)!;
    expect(['CODE_IN_FLIGHT', 'STALE_REQUEST']).toContain(refused.body.error.code);
    expect((await sessionEnd(api, sessionId)).state).toBe('succeeded');
    const request2 = (await api.get(`/v1/assistance-requests?account_id=${account.id}`)).body.data[0];
    expect(request2).toMatchObject({ id: request.id, state: 'fulfilled', attempts: 0 });
  });

  it('refuses a code for a request that is not the pending one', async () => {
    const { api } = t;
    const account = await createSandboxAccount(api, 'otp');
    const sessionId = await scrape(api, account.id);
    await pendingRequest(api, account.id);
    const reply = await api.post(`/v1/accounts/${account.id}/otp`, {
      code: '123456',
      request_id: 'asr_00000000000000000000000000',
    });
    expect(reply.status).toBe(409);
    expect(reply.body.error.code).toBe('STALE_REQUEST');
    await api.post(`/v1/sessions/${sessionId}/cancel`);
    expect((await sessionEnd(api, sessionId)).state).toBe('cancelled');
  });

  it('expires a request nobody answers, fails the login and counts it toward the block', async () => {
    const { api } = t;
    const account = await createSandboxAccount(api, 'otp', { assist_timeout_seconds: 1 });
    const sessionId = await scrape(api, account.id);
    const session = await sessionEnd(api, sessionId);
    expect(session).toMatchObject({ state: 'failed', failure_category: 'assistance_expired' });
    const requests = (await api.get(`/v1/assistance-requests?account_id=${account.id}`)).body.data;
    expect(requests).toHaveLength(1);
    expect(requests[0]).toMatchObject({ session_id: sessionId, state: 'expired', resolution: { reason: 'deadline' } });
    expect(Date.parse(requests[0].expires_at) - Date.parse(requests[0].created_at)).toBe(1000);
    const late = await api.post(`/v1/accounts/${account.id}/otp`, { code: '123456' });
    expect(late.body.error.code).toBe('NO_PENDING_REQUEST');
    const accountNow = (await api.get(`/v1/accounts/${account.id}`)).body;
    expect(accountNow).toMatchObject({ consecutive_failures: 1, blocked_at: null, status: 'idle' });
  });

  it('cancels the request when the attempts run out, before the bank locks the login', async () => {
    const { api } = t;
    const { account, sessionId, request } = await startAssistedLogin(api);
    const right = await latestCode(api, account.username);
    const wrong = right === '000000' ? '111111' : '000000';
    expect((await api.post(`/v1/accounts/${account.id}/otp?wait=true`, { code: wrong })).body.outcome).toBe('rejected');
    const last = await api.post(`/v1/accounts/${account.id}/otp?wait=true`, { code: wrong });
    expect(last.body).toMatchObject({
      outcome: 'rejected',
      assistance_request: { state: 'cancelled', attempts: 2, resolution: { reason: 'attempts_exhausted' } },
    });
    expect(await sessionEnd(api, sessionId)).toMatchObject({ state: 'failed', failure_category: 'attempts_exhausted' });
    expect(await codeColumns(request.id)).toEqual({ code_enc: null, code_submitted_at: null });
    // The bank still lets this user in: the next login asks for a code again instead of reporting a lock.
    const next = await scrape(api, account.id);
    expect((await pendingRequest(api, account.id)).session_id).toBe(next);
    await api.post(`/v1/sessions/${next}/cancel`);
    await sessionEnd(api, next);
  });

  it('cancels the pending request when the session is cancelled while waiting', async () => {
    const { api } = t;
    const { account, sessionId, request } = await startAssistedLogin(api);
    const cancel = await api.post(`/v1/sessions/${sessionId}/cancel`);
    expect(cancel.status).toBe(202);
    expect(cancel.body.cancel_requested).toBe(true);
    expect(await sessionEnd(api, sessionId)).toMatchObject({ state: 'cancelled' });
    const closed = (await api.get(`/v1/assistance-requests?account_id=${account.id}`)).body.data[0];
    expect(closed).toMatchObject({ id: request.id, state: 'cancelled', resolution: { reason: 'session_cancelled' } });
    // Cancelling does not count as a failure.
    expect((await api.get(`/v1/accounts/${account.id}`)).body.consecutive_failures).toBe(0);
    expect((await api.post(`/v1/sessions/${sessionId}/cancel`)).status).toBe(409);
  });

  it('answers the status long-poll as soon as a request opens', async () => {
    const { api } = t;
    const account = await createSandboxAccount(api, 'otp');
    const idle = (await api.get(`/v1/accounts/${account.id}/status`)).body;
    expect(idle.status).toBe('idle');
    const started = Date.now();
    const poll = api.get(`/v1/accounts/${account.id}/status?wait=20`);
    const sessionId = await scrape(api, account.id);
    const changed = (await poll).body;
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(changed.status).not.toBe('idle');
    // Then each ETag long-poll answers on the next change, until one carries the request (never a 20 s timeout).
    const status = await statusUntil(api, account.id, (s) => s.pending_assistance !== null);
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(status.status).toBe('awaiting_assistance');
    await pendingRequest(api, account.id);
    await api.post(`/v1/sessions/${sessionId}/cancel`);
    await sessionEnd(api, sessionId);
  });
});

describe('skip-on-fatal', () => {
  it('blocks at once on invalid credentials; scrape now runs without clearing the block; restart clears it', async () => {
    const { api } = t;
    const account = await createSandboxAccount(api, 'alice', {}, 'wrong');
    const first = await scrape(api, account.id);
    expect(await sessionEnd(api, first)).toMatchObject({ state: 'failed', failure_category: 'invalid_credentials' });
    const blocked = (await api.get(`/v1/accounts/${account.id}`)).body;
    expect(blocked).toMatchObject({ status: 'blocked', blocked_reason: 'invalid_credentials' });
    expect(blocked.blocked_at).not.toBeNull();

    // Fix the password, then "scrape now": it runs, succeeds, and the block stays.
    const fixed = await api.put(`/v1/accounts/${account.id}/config`, {
      credentials: { username: account.username, password: 'secret' },
    });
    expect(fixed.status).toBe(200);
    const manual = await scrape(api, account.id);
    expect((await sessionEnd(api, manual)).state).toBe('succeeded');
    expect((await api.get(`/v1/accounts/${account.id}`)).body).toMatchObject({
      status: 'blocked',
      blocked_reason: 'invalid_credentials',
    });

    const restart = await api.post(`/v1/accounts/${account.id}/restart`);
    expect(restart.status).toBe(202);
    expect(restart.body.queued).toBe(true);
    expect((await api.get(`/v1/accounts/${account.id}`)).body).toMatchObject({
      blocked_at: null,
      blocked_reason: null,
    });
    expect((await sessionEnd(api, restart.body.session_id)).state).toBe('succeeded');
    const clean = (await api.get(`/v1/accounts/${account.id}`)).body;
    expect(clean).toMatchObject({ status: 'idle', blocked_at: null, consecutive_failures: 0 });
  });

  it('blocks a locked bank account at once', async () => {
    const { api } = t;
    const account = await createSandboxAccount(api, 'locked');
    const sessionId = await scrape(api, account.id);
    expect(await sessionEnd(api, sessionId)).toMatchObject({ state: 'failed', failure_category: 'account_locked' });
    expect((await api.get(`/v1/accounts/${account.id}`)).body.blocked_reason).toBe('account_locked');
  });

  it('blocks after the threshold of consecutive non-fatal failures', async () => {
    const { api } = t;
    const account = await createSandboxAccount(api, 'otp', { assist_timeout_seconds: 1, fatal_threshold: 2 });
    for (let i = 1; i <= 2; i++) {
      const sessionId = await scrape(api, account.id);
      expect(await sessionEnd(api, sessionId)).toMatchObject({ failure_category: 'assistance_expired' });
    }
    const blocked = (await api.get(`/v1/accounts/${account.id}`)).body;
    expect(blocked).toMatchObject({ status: 'blocked', consecutive_failures: 2 });
    expect(blocked.blocked_reason).toContain('2 consecutive failures');
  });
});

describe('movement ingestion', () => {
  it('de-duplicates movements across repeated scrapes', async () => {
    const { api } = t;
    const account = await createSandboxAccount(api, 'alice');
    const first = await sessionEnd(api, await scrape(api, account.id));
    expect(first.state).toBe('succeeded');
    expect(first.movements_new).toBeGreaterThan(100);
    const second = await sessionEnd(api, await scrape(api, account.id));
    expect(second.state).toBe('succeeded');
    const all = await collectMovements(account.id);
    expect(all.length).toBe(first.movements_new + second.movements_new);
    expect(new Set(all.map((m) => m.external_id)).size).toBe(all.length);
    // Newest booking first, across pages.
    const booked = all.map((m) => m.booked_at);
    expect(booked).toEqual([...booked].sort().reverse());
    const from = booked[booked.length - 1].slice(0, 10);
    const ranged = await t.api.get(`/v1/accounts/${account.id}/movements?from=${from}&to=${from}&limit=500`);
    expect(ranged.body.data.length).toBeGreaterThan(0);
    expect(ranged.body.data.every((m: any) => m.booked_at.startsWith(from))).toBe(true);
    expect((await t.api.get(`/v1/accounts/${account.id}/movements?from=2026-13-01`)).status).toBe(400);
    // Nothing new can have been booked between the two scrapes except on an 8-hour slot boundary.
    expect(second.movements_new).toBeLessThanOrEqual(2);
    const ledgers = await t.server.store.db
      .selectFrom('bank_accounts')
      .selectAll()
      .where('account_id', '=', account.id)
      .execute();
    expect(ledgers).toHaveLength(2);
    expect(ledgers.every((l) => l.balance_current !== null)).toBe(true);
  });
});

async function collectMovements(accountId: string): Promise<any[]> {
  const out: any[] = [];
  let cursor: string | null = null;
  do {
    const reply: any = await t.api.get(
      `/v1/accounts/${accountId}/movements?limit=100${cursor ? `&cursor=${cursor}` : ''}`,
    );
    expect(reply.status).toBe(200);
    out.push(...reply.body.data);
    cursor = reply.body.next_cursor;
  } while (cursor);
  return out;
}

describe('resend', () => {
  it('asks the bank for a new code when none came in time, and the new code logs in', async () => {
    const { api } = t;
    const account = await createSandboxAccount(api, 'otp', { resend_after_seconds: 1, max_resends: 1 });
    const sessionId = await scrape(api, account.id);
    const request = await pendingRequest(api, account.id);
    const first = await latestCode(api, account.username);
    // The request waits; after a second the engine asks the bank for another SMS.
    const resent = await statusUntil(api, account.id, (s) => s.pending_assistance?.resends === 1);
    expect(resent.pending_assistance.id).toBe(request.id);
    const phone = (await api.get(`/sandbox-bank/phone/${account.username}`, null)).body.messages;
    expect(phone).toHaveLength(2);
    const second = phone[0].code;
    // The old code is void at the bank; the new one is accepted.
    if (second !== first) {
      const stale = await api.post(`/v1/accounts/${account.id}/otp?wait=true`, { code: first });
      expect(stale.body.outcome).toBe('rejected');
    }
    const accepted = await api.post(`/v1/accounts/${account.id}/otp?wait=true`, { code: second });
    expect(accepted.body.outcome).toBe('accepted');
    expect((await sessionEnd(api, sessionId)).state).toBe('succeeded');
    const events = await t.server.store.db
      .selectFrom('events')
      .select('type')
      .where('account_id', '=', account.id)
      .where('type', '=', 'assistance_resent')
      .execute();
    expect(events).toHaveLength(1);
  });

  it('asks for at most max_resends new codes however long the request waits', async () => {
    const { api } = t;
    const account = await createSandboxAccount(api, 'otp', {
      resend_after_seconds: 1,
      max_resends: 1,
      assist_timeout_seconds: 4,
    });
    const sessionId = await scrape(api, account.id);
    const request = await pendingRequest(api, account.id);
    // Four times the resend window with no code: the request expires having asked once.
    expect((await sessionEnd(api, sessionId)).failure_category).toBe('assistance_expired');
    const closed = (await api.get(`/v1/assistance-requests?account_id=${account.id}`)).body.data[0];
    expect(closed).toMatchObject({ id: request.id, state: 'expired', resends: 1 });
    expect((await api.get(`/sandbox-bank/phone/${account.username}`, null)).body.messages).toHaveLength(2);
  });
});
