import { afterEach, describe, expect, it } from 'vitest';
import { createSandboxAccount, eventually, latestCode, pendingRequest, scrape, sessionEnd } from './helpers/flows.js';
import { startTestServer, type TestServer } from './helpers/server.js';

let t: TestServer | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

describe('the scheduler', () => {
  it('runs a scheduled account when it is due, with jitter, and never a blocked one', async () => {
    let now = Date.now();
    t = await startTestServer({ clock: () => now });
    const { api } = t;
    const due = await createSandboxAccount(api, 'alice', { schedule: 'every 10m' });
    const blocked = await createSandboxAccount(api, 'locked', { schedule: 'every 10m' });
    const created = (await api.get(`/v1/accounts/${due.id}`)).body;
    const next = Date.parse(created.next_run_at);
    // every 10m: the next run is 10 minutes out plus at most 10 % jitter.
    expect(next - now).toBeGreaterThanOrEqual(600_000);
    expect(next - now).toBeLessThan(660_000);
    expect((await api.get(`/v1/accounts/${due.id}/sessions`)).body.data).toHaveLength(0);

    // Block the second account first (a manual scrape with a locked bank user blocks at once).
    expect((await sessionEnd(api, await scrape(api, blocked.id))).failure_category).toBe('account_locked');

    now += 11 * 60_000;
    const sessions = await eventually(
      () => api.get(`/v1/accounts/${due.id}/sessions`),
      (r) => r.body.data.length === 1,
    );
    expect(sessions.body.data[0].trigger).toBe('schedule');
    expect((await sessionEnd(api, sessions.body.data[0].id)).state).toBe('succeeded');
    const after = (await api.get(`/v1/accounts/${due.id}`)).body;
    expect(Date.parse(after.next_run_at)).toBeGreaterThan(now + 599_000);
    // The blocked account kept its one manual session: it is not scheduled.
    expect((await api.get(`/v1/accounts/${blocked.id}/sessions`)).body.data).toHaveLength(1);
  });
});

describe('the worker pool', () => {
  it('runs at most OTPILOT_WORKER_CONCURRENCY sessions at once; the next waits queued', async () => {
    t = await startTestServer({ env: { OTPILOT_WORKER_CONCURRENCY: '1' } });
    const { api } = t;
    const first = await createSandboxAccount(api, 'otp');
    const second = await createSandboxAccount(api, 'otp');
    const firstSession = await scrape(api, first.id);
    await pendingRequest(api, first.id);
    const secondSession = await scrape(api, second.id);
    // While the first login waits for its code, the only worker is busy: the second stays queued.
    const queued = (await api.get(`/v1/sessions/${secondSession}`)).body;
    expect(queued.state).toBe('queued');
    expect((await api.get(`/v1/accounts/${second.id}/status`)).body.status).toBe('queued');

    // Cancelling a queued session ends it at once, without a worker.
    const cancelled = await api.post(`/v1/sessions/${secondSession}/cancel`);
    expect(cancelled.body.state).toBe('cancelled');

    const code = await latestCode(api, first.username);
    expect((await api.post(`/v1/accounts/${first.id}/otp?wait=true`, { code })).body.outcome).toBe('accepted');
    expect((await sessionEnd(api, firstSession)).state).toBe('succeeded');
    // The worker is free again: the next scrape of the second account runs.
    const again = await scrape(api, second.id);
    await pendingRequest(api, second.id);
    await api.post(`/v1/sessions/${again}/cancel`);
    expect((await sessionEnd(api, again)).state).toBe('cancelled');
  });
});

describe('code submission', () => {
  it('is rate-limited per account with RATE_LIMITED and Retry-After', async () => {
    t = await startTestServer({ env: { OTPILOT_CODE_RATE_LIMIT: '3' } });
    const { api } = t;
    const limited = await createSandboxAccount(api, 'alice');
    const other = await createSandboxAccount(api, 'alice');
    for (let i = 0; i < 3; i++) {
      expect((await api.post(`/v1/accounts/${limited.id}/otp`, { code: '123456' })).body.error.code).toBe(
        'NO_PENDING_REQUEST',
      );
    }
    const refused = await api.post(`/v1/accounts/${limited.id}/otp`, { code: '123456' });
    expect(refused.status).toBe(429);
    expect(refused.body.error.code).toBe('RATE_LIMITED');
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    // Another account has its own budget.
    expect((await api.post(`/v1/accounts/${other.id}/otp`, { code: '123456' })).status).toBe(409);
  });
});

describe('no spam', () => {
  it('starts no scheduled login inside quiet hours and resumes when they end', async () => {
    // 23:00 UTC: inside a 22:00–07:00 window.
    let now = Date.parse('2026-11-22T23:00:00Z');
    t = await startTestServer({ clock: () => now });
    const { api } = t;
    const account = await createSandboxAccount(api, 'alice', {
      schedule: 'every 10m',
      quiet_hours: { start: '22:00', end: '07:00', time_zone: 'UTC' },
    });
    expect((await api.get(`/v1/accounts/${account.id}/config`)).body.quiet_hours).toEqual({
      start: '22:00',
      end: '07:00',
      time_zone: 'UTC',
    });
    now += 11 * 60_000; // due, but quiet
    const moved = await eventually(
      () => api.get(`/v1/accounts/${account.id}`),
      (r) => Date.parse(r.body.next_run_at) >= Date.parse('2026-11-23T07:00:00Z'),
    );
    expect(Date.parse(moved.body.next_run_at)).toBeLessThanOrEqual(Date.parse('2026-11-23T07:05:00Z'));
    expect((await api.get(`/v1/accounts/${account.id}/sessions`)).body.data).toHaveLength(0);
    // A manual scrape still runs at night.
    expect((await sessionEnd(api, await scrape(api, account.id))).state).toBe('succeeded');

    now = Date.parse('2026-11-23T07:06:00Z');
    const sessions = await eventually(
      () => api.get(`/v1/accounts/${account.id}/sessions`),
      (r) => r.body.data.some((s: any) => s.trigger === 'schedule'),
    );
    expect(sessions.body.data[0].trigger).toBe('schedule');
    const invalid = await api.put(`/v1/accounts/${account.id}/config`, {
      quiet_hours: { start: '25:00', end: '07:00', time_zone: 'Mars/Olympus' },
    });
    expect(invalid.status).toBe(400);
  });

  it('reads quiet hours in the account’s own time zone', async () => {
    // 22:30 in Amsterdam (UTC+1 in November) is inside its 22:00–07:00 window, though only 21:30 UTC.
    let now = Date.parse('2026-11-22T21:30:00Z');
    t = await startTestServer({ clock: () => now });
    const { api } = t;
    const account = await createSandboxAccount(api, 'alice', {
      schedule: 'every 10m',
      quiet_hours: { start: '22:00', end: '07:00', time_zone: 'Europe/Amsterdam' },
    });
    now += 11 * 60_000;
    // The window ends at 07:00 Amsterdam time, 06:00 UTC.
    const moved = await eventually(
      () => api.get(`/v1/accounts/${account.id}`),
      (r) => Date.parse(r.body.next_run_at) >= Date.parse('2026-11-23T06:00:00Z'),
    );
    expect(Date.parse(moved.body.next_run_at)).toBeLessThanOrEqual(Date.parse('2026-11-23T06:05:00Z'));
    expect((await api.get(`/v1/accounts/${account.id}/sessions`)).body.data).toHaveLength(0);
  });

  it('caps the back-off at a day, and a successful login resets it', async () => {
    let offset = 0;
    t = await startTestServer({ clock: () => Date.now() + offset });
    const { api } = t;
    const account = await createSandboxAccount(api, 'otp', { schedule: 'every 1h', assist_timeout_seconds: 1 });
    const db = t.server.store.db;
    const level = async () =>
      (await db.selectFrom('accounts').select('backoff_level').where('id', '=', account.id).executeTakeFirstOrThrow())
        .backoff_level;
    // Six unanswered prompts in a row (set directly rather than waited through).
    await db.updateTable('accounts').set({ backoff_level: 6 }).where('id', '=', account.id).execute();
    offset += 67 * 60_000; // past the first run: 1 h plus at most 10 % jitter
    const scheduled = await eventually(
      () => api.get(`/v1/accounts/${account.id}/sessions`),
      (r) => r.body.data.length === 1,
    );
    const queuedAt = Date.parse(scheduled.body.data[0].queued_at);
    expect((await sessionEnd(api, scheduled.body.data[0].id)).failure_category).toBe('assistance_expired');
    // 1 h × 2^6 would be 64 h: capped at a day; the level stays at its cap too.
    const next = Date.parse((await api.get(`/v1/accounts/${account.id}`)).body.next_run_at);
    expect(next - queuedAt).toBeGreaterThan(23.9 * 3_600_000);
    expect(next - queuedAt).toBeLessThanOrEqual(24 * 3_600_000 + 60_000);
    expect(await level()).toBe(6);
    // Someone answers the next prompt: back to the plain schedule.
    await api.put(`/v1/accounts/${account.id}/config`, { assist_timeout_seconds: 300 });
    const sessionId = await scrape(api, account.id);
    await pendingRequest(api, account.id);
    const code = await latestCode(api, account.username);
    expect((await api.post(`/v1/accounts/${account.id}/otp?wait=true`, { code })).body.outcome).toBe('accepted');
    expect((await sessionEnd(api, sessionId)).state).toBe('succeeded');
    expect(await level()).toBe(0);
  });

  it('spaces scheduled logins out after prompts nobody answered', async () => {
    // A clock that runs (request deadlines must pass) and that the test can push forward.
    let offset = 0;
    t = await startTestServer({ clock: () => Date.now() + offset });
    const { api } = t;
    const account = await createSandboxAccount(api, 'otp', { schedule: 'every 10m', assist_timeout_seconds: 1 });
    offset += 11 * 60_000;
    const first = await eventually(
      () => api.get(`/v1/accounts/${account.id}/sessions`),
      (r) => r.body.data.length === 1,
    );
    expect((await sessionEnd(api, first.body.data[0].id)).failure_category).toBe('assistance_expired');
    // Nobody answered: the next scheduled run is two intervals out, not one.
    offset += 21 * 60_000;
    const second = await eventually(
      () => api.get(`/v1/accounts/${account.id}/sessions`),
      (r) => r.body.data.length === 2,
    );
    const queuedAt = Date.parse(second.body.data[0].queued_at);
    expect((await sessionEnd(api, second.body.data[0].id)).failure_category).toBe('assistance_expired');
    const next = Date.parse((await api.get(`/v1/accounts/${account.id}`)).body.next_run_at);
    // Level 1 when the second run was scheduled (2 × 10 min), level 2 now for the one after.
    expect(next - queuedAt).toBeGreaterThanOrEqual(20 * 60_000);
    expect(next - queuedAt).toBeLessThan(25 * 60_000);
    const level = await t.server.store.db
      .selectFrom('accounts')
      .select('backoff_level')
      .where('id', '=', account.id)
      .executeTakeFirstOrThrow();
    expect(level.backoff_level).toBe(2);
  });
});
