import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Api, Reply } from './helpers/api.js';
import { createSandboxAccount, scrape, sessionEnd, statusUntil } from './helpers/flows.js';
import { startTestServer, type TestServer } from './helpers/server.js';

let t: TestServer;
let api: Api;

const MINUTE = 60_000;
const MASK = '********';

let unique = 0;
/** A sandbox bank user nobody else in this run uses. */
const bankUser = (base: string) => `${base}+acc${process.pid}y${++unique}`;

beforeAll(async () => {
  t = await startTestServer();
  api = t.api;
});

afterAll(async () => {
  await t?.close();
});

function expectValidation(reply: Reply, ...paths: string[]) {
  expect(reply.status, JSON.stringify(reply.body)).toBe(400);
  expect(reply.body.error.code).toBe('VALIDATION_FAILED');
  expect(typeof reply.body.error.message).toBe('string');
  const seen = (reply.body.error.details ?? []).map((d: { path: string }) => d.path);
  for (const path of paths) expect(seen, JSON.stringify(reply.body)).toContain(path);
}

/** All account ids, following next_cursor with `limit` per page. */
async function listAll(limit: number): Promise<{ ids: string[]; pages: number }> {
  const ids: string[] = [];
  let cursor: string | null = null;
  let pages = 0;
  do {
    const reply: Reply = await api.get(
      `/v1/accounts?limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
    );
    expect(reply.status, JSON.stringify(reply.body)).toBe(200);
    expect(reply.body.data.length).toBeLessThanOrEqual(limit);
    ids.push(...reply.body.data.map((a: { id: string }) => a.id));
    cursor = reply.body.next_cursor;
    pages++;
    if (pages > 100) throw new Error('pagination does not end');
  } while (cursor !== null);
  return { ids, pages };
}

describe('banks', () => {
  it('GET /v1/banks lists the sandbox bank with its credential fields', async () => {
    const reply = await api.get('/v1/banks');
    expect(reply.status).toBe(200);
    const sandbox = reply.body.data.find((b: { id: string }) => b.id === 'sandbox');
    expect(sandbox).toMatchObject({ id: 'sandbox', connector: 'sandbox' });
    expect(typeof sandbox.name).toBe('string');
    expect(typeof sandbox.script_version).toBe('string');
    expect(sandbox.credential_fields).toEqual([
      expect.objectContaining({ name: 'username', type: 'text', required: true }),
      expect.objectContaining({ name: 'password', type: 'password', required: true }),
    ]);
    for (const field of sandbox.credential_fields) expect(field.label.length).toBeGreaterThan(0);
  });
});

describe('create, read, list, rename', () => {
  it('creates an account with credentials and config (201), reads it back', async () => {
    const username = bankUser('alice');
    const before = Date.now();
    const created = await api.post('/v1/accounts', {
      bank_id: 'sandbox',
      name: '  Household  ',
      credentials: { username, password: 'pw-create' },
      config: { schedule: 'every 20m', assist_timeout_seconds: 120, otp_phone: '+31612345678', silent_ingestion: true },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const account = created.body;
    expect(account.id).toMatch(/^acc_[0-9a-z]{26}$/);
    expect(account).toMatchObject({
      bank_id: 'sandbox',
      name: 'Household',
      status: 'idle',
      blocked_at: null,
      blocked_reason: null,
      consecutive_failures: 0,
      has_credentials: true,
      last_success_at: null,
      last_run_at: null,
    });
    expect(Date.parse(account.created_at)).toBeGreaterThanOrEqual(before - 1000);
    expect(account.created_at).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
    const next = Date.parse(account.next_run_at);
    expect(next).toBeGreaterThan(before + 20 * MINUTE - 1000);
    expect(next).toBeLessThanOrEqual(Date.now() + 22 * MINUTE);

    const got = await api.get(`/v1/accounts/${account.id}`);
    expect(got.status).toBe(200);
    expect(got.body).toEqual(account);

    const config = await api.get(`/v1/accounts/${account.id}/config`);
    expect(config.status).toBe(200);
    expect(config.body).toMatchObject({
      schedule: 'every 20m',
      assist_timeout_seconds: 120,
      otp_phone: '+31612345678',
      silent_ingestion: true,
      session_type: 'one-shot',
      login_mode: 'assisted',
      fatal_threshold: 3,
      credentials: { username: MASK, password: MASK },
    });
  });

  it('creates an account without credentials (has_credentials false, defaults applied)', async () => {
    const created = await api.post('/v1/accounts', { bank_id: 'sandbox', name: 'Empty' });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    expect(created.body.has_credentials).toBe(false);
    expect(created.body.next_run_at).toBeNull();
    const config = (await api.get(`/v1/accounts/${created.body.id}/config`)).body;
    expect(config).toMatchObject({
      schedule: null,
      assist_timeout_seconds: 300,
      fatal_threshold: 3,
      credentials: null,
      totp_secret: null,
      notification_auth_token: null,
      webhook_auth_token: null,
    });
  });

  it('lists with pagination: limit=2, following next_cursor, every id once, newest first', async () => {
    const mine: string[] = [];
    for (let i = 0; i < 5; i++) mine.push((await createSandboxAccount(api, 'alice')).id);
    const { ids, pages } = await listAll(2);
    expect(new Set(ids).size).toBe(ids.length);
    expect(pages).toBe(Math.ceil(ids.length / 2));
    expect(ids).toContain(t.tourAccountId);
    for (const id of mine) expect(ids).toContain(id);
    // Newest first: ids are time-sortable, and the five just made come in reverse order of creation.
    expect([...ids].sort().reverse()).toEqual(ids);
    expect(ids.filter((id) => mine.includes(id))).toEqual([...mine].reverse());
    expect(ids[ids.length - 1]).toBe(t.tourAccountId);
    // One page with everything agrees with the paged walk.
    const whole = await api.get('/v1/accounts?limit=500');
    expect(whole.body.data.map((a: { id: string }) => a.id)).toEqual(ids);
    expect(whole.body.next_cursor).toBeNull();
    // An exact fit: a limit equal to the count answers next_cursor null.
    const exact = await api.get(`/v1/accounts?limit=${ids.length}`);
    expect(exact.body.data).toHaveLength(ids.length);
    expect(exact.body.next_cursor).toBeNull();
  });

  it('PATCH renames an account', async () => {
    const { id } = await createSandboxAccount(api, 'alice');
    const before = (await api.get(`/v1/accounts/${id}`)).body;
    const renamed = await api.patch(`/v1/accounts/${id}`, { name: 'Renamed account' });
    expect(renamed.status, JSON.stringify(renamed.body)).toBe(200);
    expect(renamed.body.name).toBe('Renamed account');
    expect(renamed.body.id).toBe(id);
    expect(Date.parse(renamed.body.updated_at)).toBeGreaterThanOrEqual(Date.parse(before.updated_at));
    expect((await api.get(`/v1/accounts/${id}`)).body.name).toBe('Renamed account');
    expectValidation(await api.patch(`/v1/accounts/${id}`, { name: '' }), '/name');
    expect((await api.get(`/v1/accounts/${id}`)).body.name).toBe('Renamed account');
  });
});

describe('validation on create and config', () => {
  const create = (body: Record<string, unknown>) => api.post('/v1/accounts', body);

  it('a blank name (empty or only spaces) is refused on create and rename', async () => {
    const { id } = await createSandboxAccount(api, 'alice');
    const name = (await api.get(`/v1/accounts/${id}`)).body.name as string;
    expectValidation(await api.patch(`/v1/accounts/${id}`, { name: '' }), '/name');
    // The name is trimmed before it is stored, so "   " must be refused like "".
    const spaces = await api.patch(`/v1/accounts/${id}`, { name: '   ' });
    expect((await api.get(`/v1/accounts/${id}`)).body.name, 'the account lost its name').toBe(name);
    expectValidation(spaces, '/name');
    const created = await create({
      bank_id: 'sandbox',
      name: ' \t ',
      credentials: { username: bankUser('alice'), password: 'p' },
    });
    expectValidation(created, '/name');
  });

  it('an unknown bank: 400 with details, nothing created', async () => {
    const before = (await listAll(500)).ids.length;
    expectValidation(
      await create({ bank_id: 'no-such-bank', name: 'x', credentials: { username: 'u', password: 'p' } }),
      '/bank_id',
    );
    expect((await listAll(500)).ids.length).toBe(before);
  });

  it('a missing required credential field and an unknown credential field: 400', async () => {
    expectValidation(
      await create({ bank_id: 'sandbox', name: 'x', credentials: { username: bankUser('alice') } }),
      '/credentials/password',
    );
    expectValidation(
      await create({
        bank_id: 'sandbox',
        name: 'x',
        credentials: { username: bankUser('alice'), password: 'p', pin: '1234' },
      }),
      '/credentials/pin',
    );
    expectValidation(
      await create({ bank_id: 'sandbox', name: 'x', credentials: { username: '', password: 'p' } }),
      '/credentials/username',
    );
    // The same checks on PUT /config.
    const { id } = await createSandboxAccount(api, 'alice');
    expectValidation(
      await api.put(`/v1/accounts/${id}/config`, { credentials: { username: 'u' } }),
      '/credentials/password',
    );
    expectValidation(
      await api.put(`/v1/accounts/${id}/config`, { credentials: { username: 'u', password: 'p', otp: '1' } }),
      '/credentials/otp',
    );
  });

  it('invalid schedules are refused: "every 5s", "not a cron"', async () => {
    for (const schedule of ['every 5s', 'not a cron', 'every 0m', 'every 40d', '61 * * * *']) {
      expectValidation(
        await create({
          bank_id: 'sandbox',
          name: 'x',
          credentials: { username: bankUser('alice'), password: 'p' },
          config: { schedule },
        }),
        '/config/schedule',
      );
    }
    const { id } = await createSandboxAccount(api, 'alice');
    for (const schedule of ['every 5s', 'not a cron']) {
      expectValidation(await api.put(`/v1/accounts/${id}/config`, { schedule }), '/schedule');
    }
    expect((await api.get(`/v1/accounts/${id}/config`)).body.schedule).toBeNull();
    expect((await api.get(`/v1/accounts/${id}`)).body.next_run_at).toBeNull();
  });

  it('"every 20m" and "0 7 * * *" are accepted with next_run_at in the future; null clears it', async () => {
    const { id } = await createSandboxAccount(api, 'alice');
    const t0 = Date.now();
    const every = await api.put(`/v1/accounts/${id}/config`, { schedule: 'every 20m' });
    expect(every.status, JSON.stringify(every.body)).toBe(200);
    expect(every.body.schedule).toBe('every 20m');
    const afterEvery = (await api.get(`/v1/accounts/${id}`)).body;
    const nextEvery = Date.parse(afterEvery.next_run_at);
    expect(nextEvery).toBeGreaterThanOrEqual(t0 + 20 * MINUTE);
    expect(nextEvery).toBeLessThanOrEqual(Date.now() + 22 * MINUTE);

    const cron = await api.put(`/v1/accounts/${id}/config`, { schedule: '0 7 * * *' });
    expect(cron.status, JSON.stringify(cron.body)).toBe(200);
    expect(cron.body.schedule).toBe('0 7 * * *');
    const nextCron = new Date((await api.get(`/v1/accounts/${id}`)).body.next_run_at);
    expect(nextCron.getTime()).toBeGreaterThan(Date.now());
    expect(nextCron.getTime()).toBeLessThanOrEqual(Date.now() + 24 * 60 * MINUTE + 5 * MINUTE);
    // 07:00 UTC plus at most 5 minutes of jitter.
    expect(nextCron.getUTCHours()).toBe(7);
    expect(nextCron.getUTCMinutes()).toBeLessThan(5);

    const status = (await api.get(`/v1/accounts/${id}/status`)).body;
    expect(status.next_run_at).toBe(nextCron.toISOString());

    const cleared = await api.put(`/v1/accounts/${id}/config`, { schedule: null });
    expect(cleared.status).toBe(200);
    expect(cleared.body.schedule).toBeNull();
    expect((await api.get(`/v1/accounts/${id}`)).body.next_run_at).toBeNull();
    expect((await api.get(`/v1/accounts/${id}/status`)).body.next_run_at).toBeNull();

    // A cron schedule given at creation sets next_run_at too.
    const created = await create({
      bank_id: 'sandbox',
      name: 'cron',
      credentials: { username: bankUser('alice'), password: 'p' },
      config: { schedule: '0 7 * * *' },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    expect(Date.parse(created.body.next_run_at)).toBeGreaterThan(Date.now());
  });

  it('an invalid otp_phone: 400; a valid one is stored in E.164 form', async () => {
    for (const otp_phone of ['12345', '+0612345678', 'phone', '+31 6 abc']) {
      expectValidation(
        await create({
          bank_id: 'sandbox',
          name: 'x',
          credentials: { username: bankUser('alice'), password: 'p' },
          config: { otp_phone },
        }),
        '/config/otp_phone',
      );
    }
    const { id } = await createSandboxAccount(api, 'alice');
    expectValidation(await api.put(`/v1/accounts/${id}/config`, { otp_phone: '0612345678' }), '/otp_phone');
    const ok = await api.put(`/v1/accounts/${id}/config`, { otp_phone: '+31 6 1234-5678' });
    expect(ok.status, JSON.stringify(ok.body)).toBe(200);
    expect(ok.body.otp_phone).toBe('+31612345678');
    const cleared = await api.put(`/v1/accounts/${id}/config`, { otp_phone: null });
    expect(cleared.body.otp_phone).toBeNull();
  });

  it('webhook_extra_fields may not override a reserved key (type): 400', async () => {
    expectValidation(
      await create({
        bank_id: 'sandbox',
        name: 'x',
        credentials: { username: bankUser('alice'), password: 'p' },
        config: { webhook_extra_fields: { type: 'mine' } },
      }),
      '/config/webhook_extra_fields',
    );
    const { id } = await createSandboxAccount(api, 'alice');
    for (const key of ['type', 'account_id', 'data']) {
      expectValidation(
        await api.put(`/v1/accounts/${id}/config`, { webhook_extra_fields: { [key]: 'x', tenant: 't1' } }),
        '/webhook_extra_fields',
      );
    }
    expect((await api.get(`/v1/accounts/${id}/config`)).body.webhook_extra_fields).toBeNull();
    const ok = await api.put(`/v1/accounts/${id}/config`, { webhook_extra_fields: { tenant: 't1', priority: 2 } });
    expect(ok.status).toBe(200);
    expect(ok.body.webhook_extra_fields).toEqual({ tenant: 't1', priority: 2 });
  });
});

describe('config secrets', () => {
  it('GET masks every secret and never returns a real value; unset secrets read null', async () => {
    const { id, username } = await createSandboxAccount(api, 'alice', {}, 'pw-config-real');
    const empty = (await api.get(`/v1/accounts/${id}/config`)).body;
    expect(empty.totp_secret).toBeNull();
    expect(empty.notification_auth_token).toBeNull();
    expect(empty.webhook_auth_token).toBeNull();
    expect(empty.credentials).toEqual({ username: MASK, password: MASK });

    const secrets = {
      totp_secret: 'JBSWY3DPEHPK3PXP',
      notification_auth_token: 'notif-token-real',
      webhook_auth_token: 'webhook-token-real',
    };
    const put = await api.put(`/v1/accounts/${id}/config`, {
      ...secrets,
      notification_endpoint_url: 'http://127.0.0.1:9/hook',
      notification_auth_type: 'bearer',
      webhook_url: 'http://127.0.0.1:9/webhook',
      webhook_auth_type: 'api_key',
    });
    expect(put.status, JSON.stringify(put.body)).toBe(200);
    const got = await api.get(`/v1/accounts/${id}/config`);
    for (const reply of [put, got]) {
      expect(reply.body).toMatchObject({
        credentials: { username: MASK, password: MASK },
        totp_secret: MASK,
        notification_auth_token: MASK,
        webhook_auth_token: MASK,
        notification_endpoint_url: 'http://127.0.0.1:9/hook',
        notification_auth_type: 'bearer',
        webhook_url: 'http://127.0.0.1:9/webhook',
        webhook_auth_type: 'api_key',
      });
      const text = JSON.stringify(reply.body);
      for (const real of [...Object.values(secrets), 'pw-config-real', username]) expect(text).not.toContain(real);
    }
    const accountText = JSON.stringify((await api.get(`/v1/accounts/${id}`)).body);
    for (const real of [...Object.values(secrets), 'pw-config-real']) expect(accountText).not.toContain(real);
  });

  it('PUT with a subset keeps the other fields; null clears a secret', async () => {
    const { id } = await createSandboxAccount(api, 'alice', {
      schedule: 'every 1h',
      totp_secret: 'JBSWY3DPEHPK3PXP',
      webhook_auth_token: 'wh-token',
      webhook_url: 'http://127.0.0.1:9/wh',
      webhook_extra_fields: { tenant: 'a' },
      notification_events: ['assistance_required', 'account_blocked'],
    });
    const before = (await api.get(`/v1/accounts/${id}/config`)).body;
    const nextBefore = (await api.get(`/v1/accounts/${id}`)).body.next_run_at;
    expect(before.totp_secret).toBe(MASK);

    const subset = await api.put(`/v1/accounts/${id}/config`, { assist_timeout_seconds: 90 });
    expect(subset.status, JSON.stringify(subset.body)).toBe(200);
    expect(subset.body).toEqual({ ...before, assist_timeout_seconds: 90 });
    expect((await api.get(`/v1/accounts/${id}/config`)).body).toEqual({ ...before, assist_timeout_seconds: 90 });
    // A write without `schedule` leaves next_run_at alone.
    expect((await api.get(`/v1/accounts/${id}`)).body.next_run_at).toBe(nextBefore);

    const clearTotp = await api.put(`/v1/accounts/${id}/config`, { totp_secret: null });
    expect(clearTotp.status).toBe(200);
    expect(clearTotp.body).toEqual({ ...before, assist_timeout_seconds: 90, totp_secret: null });

    const clearWebhookToken = await api.put(`/v1/accounts/${id}/config`, { webhook_auth_token: null });
    expect(clearWebhookToken.body.webhook_auth_token).toBeNull();
    expect(clearWebhookToken.body.webhook_url).toBe('http://127.0.0.1:9/wh');

    const clearCredentials = await api.put(`/v1/accounts/${id}/config`, { credentials: null });
    expect(clearCredentials.status).toBe(200);
    expect(clearCredentials.body.credentials).toBeNull();
    expect((await api.get(`/v1/accounts/${id}`)).body.has_credentials).toBe(false);

    // Setting a secret again shows the mask again.
    const again = await api.put(`/v1/accounts/${id}/config`, { totp_secret: 'JBSWY3DPEHPK3PXQ' });
    expect(again.body.totp_secret).toBe(MASK);
    // An empty body changes nothing.
    const noop = await api.put(`/v1/accounts/${id}/config`, {});
    expect(noop.status).toBe(200);
    expect(noop.body).toEqual(again.body);
  });
});

describe('delete', () => {
  it('a wrong confirmation_name: 400 and the account stays; the right one: 204, then 404', async () => {
    const { id } = await createSandboxAccount(api, 'alice');
    const name = (await api.get(`/v1/accounts/${id}`)).body.name as string;
    expectValidation(await api.delete(`/v1/accounts/${id}`, { confirmation_name: `${name} ` }), '/confirmation_name');
    expectValidation(
      await api.delete(`/v1/accounts/${id}`, { confirmation_name: name.toUpperCase() }),
      '/confirmation_name',
    );
    expectValidation(await api.delete(`/v1/accounts/${id}`, {}), '/confirmation_name');
    expect((await api.get(`/v1/accounts/${id}`)).status).toBe(200);

    const deleted = await api.delete(`/v1/accounts/${id}`, { confirmation_name: name });
    expect(deleted.status).toBe(204);
    expect(deleted.body).toBe('');
    const gone = await api.get(`/v1/accounts/${id}`);
    expect(gone.status).toBe(404);
    expect(gone.body.error.code).toBe('NOT_FOUND');
    expect((await api.get(`/v1/accounts/${id}/config`)).status).toBe(404);
    expect((await api.get(`/v1/accounts/${id}/status`)).status).toBe(404);
    expect((await listAll(500)).ids).not.toContain(id);
    // Deleting again: 404.
    expect((await api.delete(`/v1/accounts/${id}`, { confirmation_name: name })).status).toBe(404);
  });

  it('deletes an account with past sessions and their data', async () => {
    const { id } = await createSandboxAccount(api, 'alice');
    const session = await scrape(api, id);
    expect((await sessionEnd(api, session)).state).toBe('succeeded');
    const name = (await api.get(`/v1/accounts/${id}`)).body.name as string;
    const deleted = await api.delete(`/v1/accounts/${id}`, { confirmation_name: name });
    expect(deleted.status, JSON.stringify(deleted.body)).toBe(204);
    expect((await api.get(`/v1/sessions/${session}`)).status).toBe(404);
    expect((await api.get(`/v1/accounts/${id}/movements`)).status).toBe(404);
  });

  it('while a session is active: 409 CONFLICT, and the account stays', async () => {
    const { id } = await createSandboxAccount(api, 'otp');
    const session = await scrape(api, id);
    const status = await statusUntil(api, id, (s) => s.status === 'awaiting_assistance');
    expect(status.session.id).toBe(session);
    const name = (await api.get(`/v1/accounts/${id}`)).body.name as string;
    try {
      const refused = await api.delete(`/v1/accounts/${id}`, { confirmation_name: name });
      expect(refused.status, JSON.stringify(refused.body)).toBe(409);
      expect(refused.body.error.code).toBe('CONFLICT');
      const still = await api.get(`/v1/accounts/${id}`);
      expect(still.status).toBe(200);
      expect(still.body.status).toBe('awaiting_assistance');
    } finally {
      const cancel = await api.post(`/v1/sessions/${session}/cancel`);
      expect(cancel.status, JSON.stringify(cancel.body)).toBe(202);
    }
    expect((await sessionEnd(api, session)).state).toBe('cancelled');
    // Once the session has ended, the delete goes through.
    expect((await api.delete(`/v1/accounts/${id}`, { confirmation_name: name })).status).toBe(204);
  });
});

describe('scrape and restart', () => {
  it('POST /scrape twice quickly: 202 then 409 CONFLICT; restart reports the active session', async () => {
    const { id } = await createSandboxAccount(api, 'otp');
    const first = await api.post(`/v1/accounts/${id}/scrape`);
    const second = await api.post(`/v1/accounts/${id}/scrape`);
    const sessionId = first.body.session_id as string;
    try {
      expect(first.status, JSON.stringify(first.body)).toBe(202);
      expect(first.body).toEqual({ queued: true, session_id: expect.stringMatching(/^ses_[0-9a-z]{26}$/) });
      expect(second.status, JSON.stringify(second.body)).toBe(409);
      expect(second.body.error.code).toBe('CONFLICT');

      const restart = await api.post(`/v1/accounts/${id}/restart`);
      expect(restart.status, JSON.stringify(restart.body)).toBe(202);
      expect(restart.body).toEqual({ queued: false, session_id: sessionId });

      const sessions = (await api.get(`/v1/accounts/${id}/sessions`)).body.data;
      expect(sessions.map((s: { id: string }) => s.id)).toEqual([sessionId]);
      await statusUntil(api, id, (s) => s.status === 'awaiting_assistance');
      // Still refused while it waits for a code.
      const third = await api.post(`/v1/accounts/${id}/scrape`);
      expect(third.status).toBe(409);
      expect(third.body.error.code).toBe('CONFLICT');
    } finally {
      expect((await api.post(`/v1/sessions/${sessionId}/cancel`)).status).toBe(202);
    }
    expect((await sessionEnd(api, sessionId)).state).toBe('cancelled');
    // Cancelling an ended session is a conflict.
    const again = await api.post(`/v1/sessions/${sessionId}/cancel`);
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('CONFLICT');
  });
});
