import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newId } from '../src/core/ids.js';
import { makeKeysService } from '../src/keys/service.js';
import { type Api, makeApi, type Reply } from './helpers/api.js';
import { createSandboxAccount, eventually, scrape, sessionEnd, statusUntil } from './helpers/flows.js';
import { startTestServer, type TestServer } from './helpers/server.js';

let t: TestServer;
/** The bootstrap key's client; every reply it gets is kept for the "secrets never echo" check. */
let api: Api;

/** The text of every response body fetched in this file. */
const bodies: string[] = [];
/** Every credentials password used in this file. */
const passwords: string[] = [];

const REQUEST_ID = /^req_[0-9a-z]{26}$/;

/** Wraps a client so that every body it receives is recorded. */
function recorded(inner: Api): Api {
  const keep = async (pending: Promise<Reply>): Promise<Reply> => {
    const reply = await pending;
    bodies.push(typeof reply.body === 'string' ? reply.body : JSON.stringify(reply.body));
    return reply;
  };
  return {
    url: inner.url,
    // statusUntil sends its own long-poll requests with the client's key.
    ...(inner.key !== undefined ? { key: inner.key } : {}),
    get: (path, key) => keep(inner.get(path, key)),
    post: (path, body, key) => keep(inner.post(path, body, key)),
    put: (path, body, key) => keep(inner.put(path, body, key)),
    patch: (path, body, key) => keep(inner.patch(path, body, key)),
    delete: (path, body, key) => keep(inner.delete(path, body, key)),
    raw: (path, init) => keep(inner.raw(path, init)),
  };
}

/** A sandbox account with a password of its own (remembered for the secrets check). */
async function account(client: Api, username: string, config: Record<string, unknown> = {}) {
  const password = `pw-${randomUUID()}`;
  passwords.push(password);
  return createSandboxAccount(client, username, config, password);
}

/** A key made by the server's own keys service, for `orgId` (default: the bootstrap organization). */
async function makeKey(scopes: string, accountIds: string[] | null = null, orgId = t.orgId) {
  const keys = makeKeysService({ db: t.server.store.db, clock: Date.now });
  const created = await keys.create({ orgId, name: `test ${scopes}`, scopes, accountIds, createdBy: null });
  if (!created.ok) throw new Error(created.message);
  return { ...created.value, keys };
}

/** Asserts the one error shape (docs/api.md "Errors"), with this status and code, and returns the error. */
function expectError(reply: Reply, status: number, code: string) {
  expect(reply.status, JSON.stringify(reply.body)).toBe(status);
  expect(reply.headers.get('content-type')).toMatch(/application\/json/);
  expect(Object.keys(reply.body)).toEqual(['error']);
  const error = reply.body.error;
  expect(error.code).toBe(code);
  expect(typeof error.message).toBe('string');
  expect(error.message.length).toBeGreaterThan(0);
  for (const key of Object.keys(error)) expect(['code', 'message', 'details']).toContain(key);
  if (error.details !== undefined) {
    expect(Array.isArray(error.details)).toBe(true);
    for (const detail of error.details) {
      expect(Object.keys(detail).sort()).toEqual(['message', 'path']);
      expect(typeof detail.path).toBe('string');
      expect(typeof detail.message).toBe('string');
    }
  }
  return error as { code: string; message: string; details?: Array<{ path: string; message: string }> };
}

const paths = (error: { details?: Array<{ path: string }> }) => (error.details ?? []).map((d) => d.path);

/** Raw request with the bootstrap key. */
function rawWithKey(path: string, init: RequestInit & { headers?: Record<string, string> }): Promise<Reply> {
  return api.raw(path, { ...init, headers: { authorization: `Api-Key ${t.key}`, ...init.headers } });
}

beforeAll(async () => {
  t = await startTestServer();
  api = recorded(t.api);
});

afterAll(async () => {
  await t?.close();
});

describe('public endpoints and request ids', () => {
  it('/health answers ok with the role and database state, /ready answers 200, /metrics is Prometheus text', async () => {
    const health = await api.get('/health', null);
    expect(health.status).toBe(200);
    expect(health.body).toEqual({ ok: true, role: 'all', database: 'up' });
    const metrics = await fetch(`${t.url}/metrics`);
    expect(metrics.status).toBe(200);
    expect(metrics.headers.get('content-type')).toMatch(/^text\/plain/);
    const text = await metrics.text();
    expect(text).toMatch(/^otpilot_db_up 1$/m);
    expect(text).toMatch(/^otpilot_scheduler_leader 1$/m);
    expect(text).toMatch(/^otpilot_sessions_running \d+$/m);
    const ready = await api.get('/ready', null);
    expect(ready.status).toBe(200);
    expect(ready.body).toEqual({ ok: true });
  });

  it('/openapi.json is an OpenAPI 3.1 document with the account paths and a security scheme', async () => {
    const reply = await api.get('/openapi.json', null);
    expect(reply.status).toBe(200);
    const doc = reply.body;
    expect(doc.openapi).toMatch(/^3\.1\./);
    for (const path of ['/v1/accounts', '/v1/accounts/{id}/otp', '/v1/accounts/{id}/status']) {
      expect(Object.keys(doc.paths), path).toContain(path);
    }
    expect(Object.keys(doc.paths['/v1/accounts'])).toEqual(expect.arrayContaining(['get', 'post']));
    expect(Object.keys(doc.paths['/v1/accounts/{id}/otp'])).toEqual(expect.arrayContaining(['get', 'post']));
    const schemes = doc.components?.securitySchemes ?? {};
    expect(Object.keys(schemes).length).toBeGreaterThan(0);
    expect(Object.values(schemes).every((s) => typeof (s as { type?: unknown }).type === 'string')).toBe(true);
  });

  it('/docs answers an HTML page (after redirects)', async () => {
    const response = await fetch(`${t.url}/docs`, { redirect: 'follow' });
    const text = await response.text();
    bodies.push(text);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/text\/html/);
    expect(text).toMatch(/<html/i);
  });

  it('every response carries a fresh x-request-id (success, 4xx, public, docs)', async () => {
    const replies = [
      await api.get('/health', null),
      await api.get('/ready', null),
      await api.get('/openapi.json', null),
      await api.get('/v1/accounts'),
      await api.get('/v1/accounts', null),
      await api.get('/v1/accounts', 'otpk_nope'),
      await api.get('/v1/no-such-route'),
      await api.get('/no-such-route', null),
      await api.get('/v1/accounts?limit=0'),
      await rawWithKey('/v1/accounts', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{' }),
      await api.raw('/docs', { redirect: 'follow' }),
      await rawWithKey('/v1/accounts', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'x'.repeat(1024 * 1024 + 1) }),
      }),
      await rawWithKey('/v1/accounts', {
        method: 'POST',
        headers: { 'content-type': 'application/xml' },
        body: '<a/>',
      }),
    ];
    // A client cannot choose the id (it would end up in the logs).
    replies.push(await api.raw('/health', { headers: { 'x-request-id': 'client-chosen' } }));
    const ids = replies.map((r) => r.headers.get('x-request-id'));
    for (const [i, id] of ids.entries()) expect(id, `reply ${i} (${replies[i]!.status})`).toMatch(REQUEST_ID);
    expect(new Set(ids).size).toBe(ids.length);
  });
});

describe('authentication', () => {
  it('no credentials: 401 UNAUTHORIZED', async () => {
    expectError(await api.get('/v1/accounts', null), 401, 'UNAUTHORIZED');
    expectError(await api.get(`/v1/accounts/${t.tourAccountId}/status`, null), 401, 'UNAUTHORIZED');
    expectError(await api.post('/v1/accounts', { bank_id: 'sandbox', name: 'x' }, null), 401, 'UNAUTHORIZED');
  });

  it('unknown, malformed and revoked keys: 401 INVALID_API_KEY with one message for all three', async () => {
    const unknownKey = `otpk_Abcd1234_${'x'.repeat(40)}`;
    const unknown = expectError(await api.get('/v1/accounts', unknownKey), 401, 'INVALID_API_KEY');
    const malformed = expectError(await api.get('/v1/accounts', 'not-a-key'), 401, 'INVALID_API_KEY');
    const emptyScheme = await api.raw('/v1/accounts', { headers: { authorization: 'Basic dXNlcjpwYXNz' } });
    const basic = expectError(emptyScheme, 401, 'INVALID_API_KEY');

    // Revoked before it was ever used.
    const fresh = await makeKey('accounts:read');
    expect(await fresh.keys.revoke(t.orgId, fresh.id)).toBe(true);
    const revokedUnused = expectError(await api.get('/v1/accounts', fresh.key), 401, 'INVALID_API_KEY');

    // Revoked after it worked: refused once the server's verification cache (5 s) has lapsed.
    const used = await makeKey('accounts:read');
    expect((await api.get('/v1/accounts', used.key)).status).toBe(200);
    expect(await used.keys.revoke(t.orgId, used.id)).toBe(true);
    const revokedUsed = await eventually(
      () => api.get('/v1/accounts', used.key),
      (r) => r.status === 401,
      10_000,
    );
    const revoked = expectError(revokedUsed, 401, 'INVALID_API_KEY');

    const messages = new Set([unknown, malformed, basic, revokedUnused, revoked].map((e) => e.message));
    expect(messages.size).toBe(1);
    // The message does not echo the presented key.
    expect([...messages][0]).not.toContain(unknownKey);
  });

  it('accepts Authorization: Api-Key, Authorization: Bearer and x-api-key', async () => {
    const apiKey = await api.get('/v1/accounts');
    const bearer = await api.raw('/v1/accounts', { headers: { authorization: `Bearer ${t.key}` } });
    const header = await api.raw('/v1/accounts', { headers: { 'x-api-key': t.key } });
    for (const reply of [apiKey, bearer, header]) {
      expect(reply.status).toBe(200);
      expect(reply.body.data.map((a: { id: string }) => a.id)).toContain(t.tourAccountId);
    }
    // A wrong key in x-api-key is refused the same way.
    expectError(await api.raw('/v1/accounts', { headers: { 'x-api-key': 'nope' } }), 401, 'INVALID_API_KEY');
  });
});

describe('scopes', () => {
  it('a key without otp:write cannot post a code (403 FORBIDDEN)', async () => {
    const { key } = await makeKey('accounts:read,status:read,otp:read');
    const reply = await api.post(`/v1/accounts/${t.tourAccountId}/otp`, { code: '123456' }, key);
    expectError(reply, 403, 'FORBIDDEN');
  });

  it('a key without accounts:write cannot create an account (403) and nothing is created', async () => {
    const { key } = await makeKey('accounts:read');
    const before = (await api.get('/v1/accounts?limit=500')).body.data.length;
    const reply = await api.post(
      '/v1/accounts',
      { bank_id: 'sandbox', name: 'Forbidden', credentials: { username: 'alice+forbidden', password: 'p' } },
      key,
    );
    expectError(reply, 403, 'FORBIDDEN');
    expect((await api.get('/v1/accounts?limit=500')).body.data.length).toBe(before);
  });

  it('GET /v1/accounts/:id/otp works with status:read alone, other reads do not', async () => {
    const { key } = await makeKey('status:read');
    const reply = await api.get(`/v1/accounts/${t.tourAccountId}/otp`, key);
    expect(reply.status).toBe(200);
    expect(reply.body).toEqual({ assistance_request: null });
    expectError(await api.get(`/v1/accounts/${t.tourAccountId}/config`, key), 403, 'FORBIDDEN');
    expectError(await api.get(`/v1/accounts/${t.tourAccountId}/movements`, key), 403, 'FORBIDDEN');
  });
});

describe('a key restricted to one account', () => {
  it('gets 403 on another account of its organization and only sees its own', async () => {
    const a = await account(api, 'otp');
    const b = await account(api, 'otp');
    const sessionA = await scrape(api, a.id);
    const sessionB = await scrape(api, b.id);
    const pendingA = (await statusUntil(api, a.id, (s) => s.pending_assistance !== null)).pending_assistance;
    const pendingB = (await statusUntil(api, b.id, (s) => s.pending_assistance !== null)).pending_assistance;
    const { key } = await makeKey('*', [a.id]);
    try {
      const forbidden: Array<[string, Promise<Reply>]> = [
        ['get', api.get(`/v1/accounts/${b.id}`, key)],
        ['status', api.get(`/v1/accounts/${b.id}/status`, key)],
        ['status wait', api.get(`/v1/accounts/${b.id}/status?wait=1`, key)],
        ['otp get', api.get(`/v1/accounts/${b.id}/otp`, key)],
        ['otp post', api.post(`/v1/accounts/${b.id}/otp`, { code: '123456' }, key)],
        ['scrape', api.post(`/v1/accounts/${b.id}/scrape`, undefined, key)],
        ['restart', api.post(`/v1/accounts/${b.id}/restart`, undefined, key)],
        ['sessions', api.get(`/v1/accounts/${b.id}/sessions`, key)],
        ['session', api.get(`/v1/sessions/${sessionB}`, key)],
        ['cancel', api.post(`/v1/sessions/${sessionB}/cancel`, undefined, key)],
        ['movements', api.get(`/v1/accounts/${b.id}/movements`, key)],
        ['config', api.get(`/v1/accounts/${b.id}/config`, key)],
        ['config put', api.put(`/v1/accounts/${b.id}/config`, { assist_timeout_seconds: 60 }, key)],
        ['rename', api.patch(`/v1/accounts/${b.id}`, { name: 'stolen' }, key)],
        ['assistance of b', api.get(`/v1/assistance-requests?account_id=${b.id}`, key)],
      ];
      for (const [what, pending] of forbidden) {
        const reply = await pending;
        expect(reply.status, `${what}: ${JSON.stringify(reply.body)}`).toBe(403);
        expectError(reply, 403, 'FORBIDDEN');
      }

      // B is untouched: its session still waits for its code, its name and config are unchanged.
      const statusB = (await api.get(`/v1/accounts/${b.id}/status`)).body;
      expect(statusB.session?.id).toBe(sessionB);
      expect(statusB.pending_assistance?.id).toBe(pendingB.id);
      expect((await api.get(`/v1/accounts/${b.id}`)).body.name).toMatch(/^Test /);
      expect((await api.get(`/v1/accounts/${b.id}/config`)).body.assist_timeout_seconds).toBe(300);

      // The same key works on A.
      expect((await api.get(`/v1/accounts/${a.id}/status`, key)).body.pending_assistance?.id).toBe(pendingA.id);
      expect((await api.get(`/v1/accounts/${a.id}/otp`, key)).body.assistance_request?.id).toBe(pendingA.id);
      expect((await api.get(`/v1/accounts/${a.id}/sessions`, key)).body.data.map((s: { id: string }) => s.id)).toEqual([
        sessionA,
      ]);
      expect((await api.get(`/v1/sessions/${sessionA}`, key)).status).toBe(200);
      expect((await api.get(`/v1/accounts/${a.id}/movements`, key)).status).toBe(200);
      expect((await api.get(`/v1/accounts/${a.id}/config`, key)).status).toBe(200);

      // Lists only show A.
      const list = await api.get('/v1/accounts', key);
      expect(list.status).toBe(200);
      expect(list.body.data.map((x: { id: string }) => x.id)).toEqual([a.id]);
      expect(list.body.next_cursor).toBeNull();

      const requests = await api.get('/v1/assistance-requests', key);
      expect(requests.status).toBe(200);
      expect(requests.body.data.length).toBeGreaterThan(0);
      expect(requests.body.data.every((r: { account_id: string }) => r.account_id === a.id)).toBe(true);
      expect(requests.body.data.map((r: { id: string }) => r.id)).toContain(pendingA.id);
      const pending = await api.get('/v1/assistance-requests?state=pending', key);
      expect(pending.body.data.map((r: { id: string }) => r.id)).toEqual([pendingA.id]);
      // The unrestricted key sees both.
      const all = (await api.get('/v1/assistance-requests?state=pending')).body.data.map((r: { id: string }) => r.id);
      expect(all).toEqual(expect.arrayContaining([pendingA.id, pendingB.id]));

      // A restricted key cannot create accounts either.
      expectError(await api.post('/v1/accounts', { bank_id: 'sandbox', name: 'x' }, key), 403, 'FORBIDDEN');
    } finally {
      expect((await api.post(`/v1/sessions/${sessionA}/cancel`)).status).toBe(202);
      expect((await api.post(`/v1/sessions/${sessionB}/cancel`)).status).toBe(202);
    }
    expect((await sessionEnd(api, sessionA)).state).toBe('cancelled');
    expect((await sessionEnd(api, sessionB)).state).toBe('cancelled');
  });
});

describe('another organization', () => {
  it('answers 404 NOT_FOUND for its accounts and sessions, and changes nothing of them', async () => {
    const orgId = newId('org');
    await t.server.store.db
      .insertInto('organizations')
      .values({ id: orgId, name: 'Other org', created_at: Date.now() })
      .execute();
    const other = await makeKey('*', null, orgId);
    const otherApi = recorded(makeApi(t.url, other.key));
    const theirs = await account(otherApi, 'alice');
    const theirSession = await scrape(otherApi, theirs.id);
    const ended = await sessionEnd(otherApi, theirSession);
    expect(ended.state).toBe('succeeded');
    const theirName = (await otherApi.get(`/v1/accounts/${theirs.id}`)).body.name as string;

    const calls: Array<[string, Promise<Reply>]> = [
      ['get', api.get(`/v1/accounts/${theirs.id}`)],
      ['rename', api.patch(`/v1/accounts/${theirs.id}`, { name: 'mine now' })],
      ['status', api.get(`/v1/accounts/${theirs.id}/status`)],
      ['status wait', api.get(`/v1/accounts/${theirs.id}/status?wait=1`)],
      ['otp get', api.get(`/v1/accounts/${theirs.id}/otp`)],
      ['otp post', api.post(`/v1/accounts/${theirs.id}/otp`, { code: '123456' })],
      ['scrape', api.post(`/v1/accounts/${theirs.id}/scrape`)],
      ['restart', api.post(`/v1/accounts/${theirs.id}/restart`)],
      ['config', api.get(`/v1/accounts/${theirs.id}/config`)],
      ['config put', api.put(`/v1/accounts/${theirs.id}/config`, { schedule: 'every 20m' })],
      ['sessions', api.get(`/v1/accounts/${theirs.id}/sessions`)],
      ['movements', api.get(`/v1/accounts/${theirs.id}/movements`)],
      ['assistance', api.get(`/v1/assistance-requests?account_id=${theirs.id}`)],
      ['delete', api.delete(`/v1/accounts/${theirs.id}`, { confirmation_name: theirName })],
      ['session', api.get(`/v1/sessions/${theirSession}`)],
      ['cancel', api.post(`/v1/sessions/${theirSession}/cancel`)],
    ];
    for (const [what, pending] of calls) {
      const reply = await pending;
      expect(reply.status, `${what}: ${JSON.stringify(reply.body)}`).toBe(404);
      expectError(reply, 404, 'NOT_FOUND');
    }
    expect((await api.get('/v1/accounts?limit=500')).body.data.map((a: { id: string }) => a.id)).not.toContain(
      theirs.id,
    );

    // Their account is intact: same name, no new session, no schedule.
    const after = await otherApi.get(`/v1/accounts/${theirs.id}`);
    expect(after.status).toBe(200);
    expect(after.body.name).toBe(theirName);
    expect(after.body.next_run_at).toBeNull();
    const sessions = (await otherApi.get(`/v1/accounts/${theirs.id}/sessions`)).body.data;
    expect(sessions.map((s: { id: string }) => s.id)).toEqual([theirSession]);
    // And their key cannot see ours.
    expectError(await otherApi.get(`/v1/accounts/${t.tourAccountId}`), 404, 'NOT_FOUND');
    expect((await otherApi.get('/v1/accounts')).body.data.map((a: { id: string }) => a.id)).toEqual([theirs.id]);
  });
});

describe('bad input answers the error shape, never 500', () => {
  it('a body that is not JSON: 400 VALIDATION_FAILED', async () => {
    for (const body of ['{"bank_id":', 'not json', '{"a":1}}', "{'single':'quotes'}"]) {
      const reply = await rawWithKey('/v1/accounts', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
      });
      expectError(reply, 400, 'VALIDATION_FAILED');
    }
  });

  it('wrong types: 400 with details [{ path, message }]', async () => {
    const name = expectError(
      await api.post('/v1/accounts', { bank_id: 'sandbox', name: 123 }),
      400,
      'VALIDATION_FAILED',
    );
    expect(paths(name)).toContain('/name');
    const credentials = expectError(
      await api.post('/v1/accounts', { bank_id: 'sandbox', name: 'x', credentials: 'x' }),
      400,
      'VALIDATION_FAILED',
    );
    expect(paths(credentials)).toContain('/credentials');
    // No coercion of "3" into a number on bodies.
    const timeout = expectError(
      await api.put(`/v1/accounts/${t.tourAccountId}/config`, { assist_timeout_seconds: '3' }),
      400,
      'VALIDATION_FAILED',
    );
    expect(paths(timeout)).toContain('/assist_timeout_seconds');
    const missing = expectError(await api.post('/v1/accounts', { name: 'x' }), 400, 'VALIDATION_FAILED');
    expect(paths(missing)).toContain('/bank_id');
  });

  it('unknown fields: 400 with the field path, at the top level', async () => {
    const create = expectError(
      await api.post('/v1/accounts', { bank_id: 'sandbox', name: 'x', colour: 'red' }),
      400,
      'VALIDATION_FAILED',
    );
    expect(paths(create)).toContain('/colour');
    const rename = expectError(
      await api.patch(`/v1/accounts/${t.tourAccountId}`, { name: 'x', nickname: 'y' }),
      400,
      'VALIDATION_FAILED',
    );
    expect(paths(rename)).toContain('/nickname');
    const otp = expectError(
      await api.post(`/v1/accounts/${t.tourAccountId}/otp`, { code: '123456', extra: true }),
      400,
      'VALIDATION_FAILED',
    );
    expect(paths(otp)).toContain('/extra');
  });

  it('unknown fields: 400 with the field path, inside the account config (create)', async () => {
    // A misspelt `schedule` must not silently create an account that never runs.
    const reply = await api.post('/v1/accounts', {
      bank_id: 'sandbox',
      name: 'Misspelt config',
      credentials: { username: `alice+misspelt${process.pid}`, password: 'p' },
      config: { shedule: 'every 20m' },
    });
    const error = expectError(reply, 400, 'VALIDATION_FAILED');
    expect(paths(error)).toContain('/config/shedule');
  });

  it('unknown fields: 400 with the field path, on PUT /config', async () => {
    const target = await account(api, 'alice');
    const reply = await api.put(`/v1/accounts/${target.id}/config`, { shedule: 'every 20m' });
    const error = expectError(reply, 400, 'VALIDATION_FAILED');
    expect(paths(error)).toContain('/shedule');
    const mixed = await api.put(`/v1/accounts/${target.id}/config`, { assist_timeout_seconds: 60, colour: 'red' });
    expect(paths(expectError(mixed, 400, 'VALIDATION_FAILED'))).toContain('/colour');
    // Nothing of a refused write was applied.
    expect((await api.get(`/v1/accounts/${target.id}/config`)).body.assist_timeout_seconds).toBe(300);
  });

  it('a body over 1 MiB: 413 PAYLOAD_TOO_LARGE', async () => {
    const body = JSON.stringify({
      bank_id: 'sandbox',
      name: 'big',
      credentials: { username: 'alice+big', password: 'x'.repeat(1024 * 1024 + 16) },
    });
    const reply = await rawWithKey('/v1/accounts', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
    });
    expectError(reply, 413, 'PAYLOAD_TOO_LARGE');
  });

  it('a text/plain body on POST /v1/accounts: 415 UNSUPPORTED_MEDIA_TYPE', async () => {
    const reply = await rawWithKey('/v1/accounts', {
      method: 'POST',
      headers: { 'content-type': 'text/plain' },
      body: JSON.stringify({ bank_id: 'sandbox', name: 'plain' }),
    });
    expectError(reply, 415, 'UNSUPPORTED_MEDIA_TYPE');
  });

  it('other unsupported content types: 415 UNSUPPORTED_MEDIA_TYPE', async () => {
    for (const type of ['application/x-www-form-urlencoded', 'application/xml']) {
      const reply = await rawWithKey('/v1/accounts', {
        method: 'POST',
        headers: { 'content-type': type },
        body: 'bank_id=sandbox&name=form',
      });
      expectError(reply, 415, 'UNSUPPORTED_MEDIA_TYPE');
    }
  });

  it('a cursor this API did not make: 400', async () => {
    for (const path of [
      '/v1/accounts?cursor=not-a-cursor',
      `/v1/accounts?cursor=${Buffer.from('acc_short').toString('base64url')}`,
      `/v1/accounts/${t.tourAccountId}/sessions?cursor=%%%`,
      '/v1/assistance-requests?cursor=zzz',
      `/v1/accounts/${t.tourAccountId}/movements?cursor=abc`,
    ]) {
      const error = expectError(await api.get(path), 400, 'VALIDATION_FAILED');
      expect(error.message.length, path).toBeGreaterThan(0);
    }
  });

  it('limit=0, limit=501 and limit=abc: 400', async () => {
    for (const limit of ['0', '501', 'abc', '-1', '1.5']) {
      const error = expectError(await api.get(`/v1/accounts?limit=${limit}`), 400, 'VALIDATION_FAILED');
      expect(
        paths(error).some((p) => p.includes('limit')),
        `limit=${limit}`,
      ).toBe(true);
    }
    expect((await api.get('/v1/accounts?limit=1')).status).toBe(200);
    expect((await api.get('/v1/accounts?limit=500')).status).toBe(200);
  });

  it('?wait=61 on status: 400 (and an unknown query parameter too)', async () => {
    expectError(await api.get(`/v1/accounts/${t.tourAccountId}/status?wait=61`), 400, 'VALIDATION_FAILED');
    expectError(await api.get(`/v1/accounts/${t.tourAccountId}/status?wait=-1`), 400, 'VALIDATION_FAILED');
    expectError(await api.get(`/v1/accounts/${t.tourAccountId}/status?colour=red`), 400, 'VALIDATION_FAILED');
    expect((await api.get(`/v1/accounts/${t.tourAccountId}/status?wait=0`)).status).toBe(200);
  });

  it('an unknown route: 404 NOT_FOUND, with or without a key', async () => {
    expectError(await api.get('/v1/nothing-here'), 404, 'NOT_FOUND');
    expectError(await api.get('/v1/nothing-here', null), 404, 'NOT_FOUND');
    expectError(await api.get('/nothing-here', null), 404, 'NOT_FOUND');
    expectError(await api.post('/v1/accounts/acc_x/fly', {}), 404, 'NOT_FOUND');
    // An unknown id on a known route is NOT_FOUND too.
    expectError(await api.get('/v1/accounts/acc_00000000000000000000000000'), 404, 'NOT_FOUND');
    expectError(await api.get('/v1/sessions/ses_00000000000000000000000000'), 404, 'NOT_FOUND');
  });

  it('prototype poisoning ({"__proto__": …}, {"constructor": {"prototype": …}}): 400', async () => {
    for (const body of [
      '{"__proto__": {"x": 1}}',
      '{"bank_id":"sandbox","name":"p","__proto__":{"isAdmin":true}}',
      '{"bank_id":"sandbox","name":"p","constructor":{"prototype":{"x":1}}}',
    ]) {
      const reply = await rawWithKey('/v1/accounts', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
      });
      expectError(reply, 400, 'VALIDATION_FAILED');
    }
    expect(({} as Record<string, unknown>).x).toBeUndefined();
    expect(({} as Record<string, unknown>).isAdmin).toBeUndefined();
  });
});

describe('error codes', () => {
  it('POST /otp on an account with no pending request: 409 NO_PENDING_REQUEST', async () => {
    const idle = await account(api, 'alice');
    const reply = await api.post(`/v1/accounts/${idle.id}/otp`, { code: '123456' });
    expectError(reply, 409, 'NO_PENDING_REQUEST');
    // With a request_id too, and after a finished session the answer is the same.
    const session = await scrape(api, idle.id);
    expect((await sessionEnd(api, session)).state).toBe('succeeded');
    expectError(
      await api.post(`/v1/accounts/${idle.id}/otp`, { code: '123456', request_id: 'asr_00000000000000000000000000' }),
      409,
      'NO_PENDING_REQUEST',
    );
  });
});

describe('secrets never echo', () => {
  it('the API key and the credentials passwords are in no response body', async () => {
    const mine = await account(api, 'alice', { totp_secret: 'JBSWY3DPEHPK3PXP', webhook_auth_token: 'tok-secret-1' });
    const session = await scrape(api, mine.id);
    await sessionEnd(api, session);
    const secrets = [t.key, ...passwords, 'JBSWY3DPEHPK3PXP', 'tok-secret-1'];
    const replies = [
      await api.get(`/v1/accounts/${mine.id}`),
      await api.get('/v1/accounts?limit=500'),
      await api.get(`/v1/accounts/${mine.id}/config`),
      await api.put(`/v1/accounts/${mine.id}/config`, { notification_auth_token: 'tok-secret-2' }),
      await api.get(`/v1/accounts/${mine.id}/sessions`),
      await api.get(`/v1/sessions/${session}`),
      await api.get(`/v1/accounts/${mine.id}/status`),
      await api.get(`/v1/accounts/${t.tourAccountId}/status`),
      await api.get('/v1/assistance-requests'),
      await api.get(`/v1/accounts/${mine.id}/movements`),
    ];
    secrets.push('tok-secret-2');
    for (const reply of replies) expect(reply.status, JSON.stringify(reply.body)).toBeLessThan(300);
    // The config shows the secrets set, masked.
    const config = replies[2]!.body;
    expect(config.credentials).toEqual({ username: '********', password: '********' });
    expect(config.totp_secret).toBe('********');
    expect(config.webhook_auth_token).toBe('********');
    expect(replies[3]!.body.notification_auth_token).toBe('********');

    expect(bodies.length).toBeGreaterThan(50);
    expect(passwords.length).toBeGreaterThan(3);
    for (const text of bodies) {
      for (const secret of secrets)
        expect(text.includes(secret), `a body echoes a secret: ${text.slice(0, 200)}`).toBe(false);
    }
  });
});
