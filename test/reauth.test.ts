import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newId } from '../src/core/ids.js';
import { makeKeysService } from '../src/keys/service.js';
import { type Api, makeApi, type Reply } from './helpers/api.js';
import {
  createSandboxAccount,
  latestCode,
  nextEvent,
  pendingRequest,
  scrape,
  sessionEnd,
  statusUntil,
} from './helpers/flows.js';
import { type Receiver, startReceiver } from './helpers/receiver.js';
import { startTestServer, type TestServer } from './helpers/server.js';

let t: TestServer;
let hook: Receiver;

beforeAll(async () => {
  t = await startTestServer();
  hook = await startReceiver();
});
afterAll(async () => {
  await t?.close();
  await hook?.close();
});

/** Every secret a test handled: none may appear in any stored row or event. */
const secrets: string[] = [];
/** Codes sent through commit (checked as whole tokens: a 6-digit run inside a longer number is no leak). */
const codes: string[] = [];

async function reauthorise(api: Api, accountId: string, key?: string): Promise<string> {
  const reply = await api.post(`/v1/accounts/${accountId}/reauthorise`, undefined, key);
  expect(reply.status, JSON.stringify(reply.body)).toBe(200);
  expect(reply.body.token).toMatch(/^otpr_/);
  secrets.push(reply.body.token);
  return reply.body.token;
}

async function openSession(api: Api, token: string, key?: string): Promise<Reply> {
  return api.post('/v1/connect/session', { reauth_token: token }, key);
}

async function commit(api: Api, sessionId: string | null, body: unknown, key?: string): Promise<Reply> {
  const headers: Record<string, string> = {
    authorization: `Api-Key ${key ?? api.key ?? ''}`,
    'content-type': 'application/json',
  };
  if (sessionId !== null) headers['x-session-id'] = sessionId;
  const otp = (body as { otp?: unknown } | null)?.otp;
  if (typeof otp === 'string' && /^[0-9]{6}$/.test(otp) && otp !== '123456') codes.push(otp);
  return api.raw('/v1/connect/commit', { method: 'POST', headers, body: JSON.stringify(body) });
}

function expectError(reply: Reply, status: number, code: string) {
  expect(reply.status, JSON.stringify(reply.body)).toBe(status);
  expect(Object.keys(reply.body)).toEqual(['error']);
  expect(reply.body.error.code).toBe(code);
}

function otpForm(length: number) {
  return {
    title: expect.any(String),
    form: [
      {
        type: 'elements.input',
        name: 'otp',
        hint: expect.stringMatching(/^Enter the code we sent to •••• \d{4}$/),
        content_type: 'number',
        max_length: length,
      },
    ],
  };
}

async function reauthorizedEvents(accountId: string) {
  return t.server.store.db
    .selectFrom('events')
    .selectAll()
    .where('type', '=', 'account_reauthorized')
    .where('account_id', '=', accountId)
    .execute();
}

/** A key made by the server's own keys service (another organization, or restricted to some accounts). */
async function makeKey(scopes: string, accountIds: string[] | null, orgId = t.orgId): Promise<string> {
  const keys = makeKeysService({ db: t.server.store.db, clock: Date.now });
  const created = await keys.create({ orgId, name: `test ${scopes}`, scopes, accountIds, createdBy: null });
  if (!created.ok) throw new Error(created.message);
  return created.value.key;
}

describe('reauthorisation (Mono-style)', () => {
  it('goes 102 → wrong code 102 → right code 99 and delivers account_reauthorized once', async () => {
    const { api } = t;
    const account = await createSandboxAccount(api, 'otp');
    const endpoint = await api.post('/v1/webhooks', {
      url: hook.url,
      events: ['account_reauthorized'],
      account_ids: [account.id],
    });
    expect(endpoint.status).toBe(201);

    const token = await reauthorise(api, account.id);
    const issued = await api.post(`/v1/accounts/${account.id}/reauthorise`);
    // Each call issues its own token; the first stays valid.
    expect(issued.body.token).not.toBe(token);
    secrets.push(issued.body.token);

    const opened = await openSession(api, token);
    expect(opened.status, JSON.stringify(opened.body)).toBe(200);
    expect(opened.body).toMatchObject({
      status: 200,
      id: expect.stringMatching(/^ses_/),
      account_id: account.id,
      bank: { id: 'sandbox', name: 'Sandbox Bank' },
      ui: otpForm(6),
      reauth: { response_code: 102 },
    });
    expect(Date.parse(opened.body.expires_at)).toBeGreaterThan(Date.now());
    const sessionId = opened.body.id as string;

    const right = await latestCode(api, account.username);
    const wrong = right === '000000' ? '111111' : '000000';
    const rejected = await commit(api, sessionId, { otp: wrong });
    expect(rejected.status, JSON.stringify(rejected.body)).toBe(200);
    expect(rejected.body).toMatchObject({ status: 200, response_code: 102, id: sessionId, ui: otpForm(6), data: null });
    expect(rejected.body.message).toMatch(/rejected the code; 1 attempt left/);

    const accepted = await commit(api, sessionId, { otp: right });
    expect(accepted.status, JSON.stringify(accepted.body)).toBe(200);
    expect(accepted.body).toEqual({
      status: 200,
      response_code: 99,
      message: expect.any(String),
      id: sessionId,
      ui: null,
      data: { code: account.id },
    });

    // The code went through the one assistance path, recorded as connect_commit.
    const requests = (await api.get(`/v1/assistance-requests?account_id=${account.id}`)).body.data;
    expect(requests).toHaveLength(1);
    expect(requests[0]).toMatchObject({ state: 'fulfilled', attempts: 1, resolution: { via: 'connect_commit' } });

    const [delivered] = await hook.waitFor(1);
    expect(delivered!.json).toMatchObject({
      type: 'account_reauthorized',
      status: 'account.reauthorized',
      account_id: account.id,
      data: { id: account.id },
    });
    // Asking again answers 99 without a second event.
    const again = await api.raw('/v1/connect/session', {
      headers: { authorization: `Api-Key ${api.key}`, 'x-session-id': sessionId },
    });
    expect(again.body.reauth.response_code).toBe(99);
    expect(await reauthorizedEvents(account.id)).toHaveLength(1);
    expect(hook.received).toHaveLength(1);
    // A further commit on a completed connect session is refused.
    expectError(await commit(api, sessionId, { otp: right }), 409, 'CONFLICT');

    const audit = await t.server.store.db
      .selectFrom('audit_log')
      .select(['action', 'outcome', 'details'])
      .where('account_id', '=', account.id)
      .orderBy('id')
      .execute();
    expect(audit.map((a) => `${a.action}:${a.outcome}`)).toEqual(
      expect.arrayContaining([
        'account.reauthorise:issued',
        'account.reauthorise.session:started',
        'otp.submit:submitted',
        'account.reauthorise.commit:code_submitted',
        'account.reauthorise.complete:reauthorized',
      ]),
    );
    const stored = JSON.stringify(audit);
    expect(stored).not.toContain(right);
    expect(stored).not.toContain(wrong);
    expect(stored).not.toContain(token);
  });

  it('answers 99 at once when the bank needs no input', async () => {
    const { api } = t;
    const account = await createSandboxAccount(api, 'alice');
    const event = nextEvent(t, 'account_reauthorized', account.id);
    const opened = await openSession(api, await reauthorise(api, account.id));
    expect(opened.body).toMatchObject({ ui: null, reauth: { response_code: 99 } });
    expect((await event).data).toEqual({ id: account.id });
    expect(await reauthorizedEvents(account.id)).toHaveLength(1);
  });

  it('answers 102 without a form while the bank waits for an approval, and 99 once it is approved', async () => {
    const { api } = t;
    const account = await createSandboxAccount(api, 'approve');
    const opened = await openSession(api, await reauthorise(api, account.id));
    expect(opened.body).toMatchObject({ ui: null, reauth: { response_code: 102 } });
    expect(opened.body.message).toMatch(/GET \/v1\/connect\/session/);
    const approve = await api.post(
      `/sandbox-bank/phone/${encodeURIComponent(account.username)}/approve`,
      undefined,
      null,
    );
    expect(approve.status).toBe(200);
    const done = await api.raw('/v1/connect/session', {
      headers: { authorization: `Api-Key ${api.key}`, 'x-session-id': opened.body.id },
    });
    expect(done.body).toMatchObject({ ui: null, reauth: { response_code: 99 } });
    expect(await reauthorizedEvents(account.id)).toHaveLength(1);
  });

  it('follows a login already waiting for a code instead of starting another', async () => {
    const { api } = t;
    const account = await createSandboxAccount(api, 'otp');
    const running = await scrape(api, account.id);
    await pendingRequest(api, account.id);
    const opened = await openSession(api, await reauthorise(api, account.id));
    expect(opened.body).toMatchObject({ ui: otpForm(6), reauth: { response_code: 102 } });
    const done = await commit(api, opened.body.id, { otp: await latestCode(api, account.username) });
    expect(done.body.response_code).toBe(99);
    expect((await sessionEnd(api, running)).state).toBe('succeeded');
    expect((await api.get(`/v1/accounts/${account.id}/sessions`)).body.data).toHaveLength(1);
  });

  it('asks for the password the bank refused, stores it encrypted, then asks for the code', async () => {
    const { api } = t;
    const account = await createSandboxAccount(api, 'otp', {}, 'wrong');
    const password = `pw-${randomUUID()}`;
    secrets.push(password);

    const opened = await openSession(api, await reauthorise(api, account.id));
    expect(opened.status, JSON.stringify(opened.body)).toBe(200);
    expect(opened.body).toMatchObject({
      ui: {
        form: [{ type: 'elements.input', name: 'password', content_type: 'password', max_length: 256 }],
      },
      reauth: { response_code: 102 },
    });
    // The refused password blocked the account (fatal); a code commit is not what the bank wants now.
    expect((await api.get(`/v1/accounts/${account.id}`)).body.blocked_reason).toBe('invalid_credentials');
    expectError(await commit(api, opened.body.id, { otp: '123456' }), 409, 'NO_PENDING_REQUEST');

    const next = await commit(api, opened.body.id, { password });
    expect(next.status, JSON.stringify(next.body)).toBe(200);
    expect(next.body).toMatchObject({ response_code: 102, ui: otpForm(6), data: null });

    const done = await commit(api, opened.body.id, { otp: await latestCode(api, account.username) });
    expect(done.body).toMatchObject({ response_code: 99, data: { code: account.id } });
    const after = (await api.get(`/v1/accounts/${account.id}`)).body;
    expect(after).toMatchObject({ blocked_at: null, blocked_reason: null });

    // Stored encrypted, the username kept; only field names are ever read back.
    const config = (await api.get(`/v1/accounts/${account.id}/config`)).body;
    expect(Object.keys(config.credentials).sort()).toEqual(['password', 'username']);
    const row = await t.server.store.db
      .selectFrom('accounts')
      .select('credentials_enc')
      .where('id', '=', account.id)
      .executeTakeFirstOrThrow();
    expect(row.credentials_enc).not.toContain(password);
    expect(row.credentials_enc).not.toContain(account.username);

    // The next scrape logs in with the stored credentials: the bank gets as far as the code.
    const sessionId = await scrape(api, account.id);
    await pendingRequest(api, account.id);
    const code = await latestCode(api, account.username);
    const submitted = await api.post(`/v1/accounts/${account.id}/otp?wait=true`, { code });
    expect(submitted.body.outcome).toBe('accepted');
    expect((await sessionEnd(api, sessionId)).state).toBe('succeeded');

    const audit = await t.server.store.db
      .selectFrom('audit_log')
      .selectAll()
      .where('account_id', '=', account.id)
      .execute();
    expect(audit.map((a) => `${a.action}:${a.outcome}`)).toEqual(
      expect.arrayContaining(['account.config.update:ok', 'account.reauthorise.commit:password_updated']),
    );
    expect(JSON.stringify(audit)).not.toContain(password);
    expect(await reauthorizedEvents(account.id)).toHaveLength(1);
  });

  it('refuses a second use of a token with 410 GONE', async () => {
    const { api } = t;
    const account = await createSandboxAccount(api, 'alice');
    const token = await reauthorise(api, account.id);
    expect((await openSession(api, token)).status).toBe(200);
    const reused = await openSession(api, token);
    expectError(reused, 410, 'GONE');
    expect(reused.body.error.message).toMatch(/already used/);
    expect(JSON.stringify(reused.body)).not.toContain(token);
    // Two uses at once: exactly one wins.
    const fresh = await reauthorise(api, account.id);
    const both = await Promise.all([openSession(api, fresh), openSession(api, fresh)]);
    expect(both.map((r) => r.status).sort()).toEqual([200, 410]);
    // A token that was never issued does not exist.
    expectError(await openSession(api, `otpr_${randomUUID()}`), 404, 'NOT_FOUND');
  });

  it('answers 404 for an unknown x-session-id and 400 for malformed commits', async () => {
    const { api } = t;
    expectError(await commit(api, newId('ses'), { otp: '123456' }), 404, 'NOT_FOUND');
    expectError(await commit(api, 'nonsense', { otp: '123456' }), 404, 'NOT_FOUND');

    const account = await createSandboxAccount(api, 'otp');
    const opened = await openSession(api, await reauthorise(api, account.id));
    const id = opened.body.id as string;
    for (const body of [
      {},
      { otp: '123456', password: 'x' },
      { otp: 123456 },
      { password: '' },
      { otp: '' },
      { code: '123456' },
      [],
      'otp',
    ]) {
      const reply = await commit(api, id, body);
      expectError(reply, 400, 'VALIDATION_FAILED');
    }
    const missing = await commit(api, null, { otp: '123456' });
    expectError(missing, 400, 'VALIDATION_FAILED');
    expect(JSON.stringify(missing.body.error.details)).toContain('x-session-id');
    const notJson = await api.raw('/v1/connect/commit', {
      method: 'POST',
      headers: { authorization: `Api-Key ${api.key}`, 'content-type': 'application/json', 'x-session-id': id },
      body: '{"otp":',
    });
    expectError(notJson, 400, 'VALIDATION_FAILED');
    expectError(await api.post('/v1/connect/session', {}), 400, 'VALIDATION_FAILED');

    // A code that cannot fit the descriptor never reaches the bank.
    for (const otp of ['12345', 'abcdef']) {
      const refused = await commit(api, id, { otp });
      expectError(refused, 422, 'CODE_FORMAT');
      // The detail names the caller's own field.
      expect(refused.body.error.details[0].path).toBe('/otp');
    }
    const request = (await api.get(`/v1/accounts/${account.id}/otp`)).body.assistance_request;
    expect(request).toMatchObject({ state: 'pending', attempts: 0 });
    // The login still completes.
    const done = await commit(api, id, { otp: await latestCode(api, account.username) });
    expect(done.body.response_code).toBe(99);
  });

  it('keeps other organizations and restricted keys out', async () => {
    const { api } = t;
    const account = await createSandboxAccount(api, 'otp');
    const other = await createSandboxAccount(api, 'alice');
    const orgId = newId('org');
    await t.server.store.db
      .insertInto('organizations')
      .values({ id: orgId, name: 'Other org', created_at: Date.now() })
      .execute();
    const foreign = makeApi(t.url, await makeKey('*', null, orgId));
    const restricted = makeApi(t.url, await makeKey('sessions:write', [other.id]));
    const readOnly = makeApi(t.url, await makeKey('accounts:read,status:read', null));

    expectError(await foreign.post(`/v1/accounts/${account.id}/reauthorise`), 404, 'NOT_FOUND');
    expectError(await restricted.post(`/v1/accounts/${account.id}/reauthorise`), 403, 'FORBIDDEN');
    expectError(await readOnly.post(`/v1/accounts/${account.id}/reauthorise`), 403, 'FORBIDDEN');

    const token = await reauthorise(api, account.id);
    expectError(await openSession(foreign, token), 404, 'NOT_FOUND');
    expectError(await openSession(restricted, token), 403, 'FORBIDDEN');
    expectError(await openSession(readOnly, token), 403, 'FORBIDDEN');
    // None of that spent the token.
    const opened = await openSession(api, token);
    expect(opened.status).toBe(200);
    const id = opened.body.id as string;

    expectError(await commit(foreign, id, { otp: '123456' }), 404, 'NOT_FOUND');
    expectError(await commit(restricted, id, { otp: '123456' }), 403, 'FORBIDDEN');
    expectError(await commit(readOnly, id, { otp: '123456' }), 403, 'FORBIDDEN');
    const peek = await foreign.raw('/v1/connect/session', {
      headers: { authorization: `Api-Key ${foreign.key}`, 'x-session-id': id },
    });
    expectError(peek, 404, 'NOT_FOUND');
    // Nothing reached the request.
    const request = (await api.get(`/v1/accounts/${account.id}/otp`)).body.assistance_request;
    expect(request).toMatchObject({ state: 'pending', attempts: 0, code_in_flight: false });
    const done = await commit(api, id, { otp: await latestCode(api, account.username) });
    expect(done.body.response_code).toBe(99);
  });

  it('documents the routes in the OpenAPI document, on /v1 only', async () => {
    const doc = (await t.api.get('/openapi.json', null)).body;
    for (const [path, method] of [
      ['/v1/accounts/{id}/reauthorise', 'post'],
      ['/v1/connect/session', 'post'],
      ['/v1/connect/session', 'get'],
      ['/v1/connect/commit', 'post'],
    ] as const) {
      const operation = doc.paths[path]?.[method];
      expect(operation, `${method} ${path}`).toBeDefined();
      expect(operation.tags).toEqual(['reauthorisation']);
      expect(operation.description).toBeTruthy();
    }
    expect(doc.paths['/connect/commit']).toBeUndefined();
    // The dashboard API does not mirror the flow.
    const dashboard = await t.api.raw('/connect/commit', { method: 'POST' });
    expect(dashboard.status).toBe(404);
  });

  it('never stores or emits a token, code or password', async () => {
    const db = t.server.store.db;
    const dump = JSON.stringify([
      await db.selectFrom('audit_log').selectAll().execute(),
      await db.selectFrom('events').selectAll().execute(),
      await db.selectFrom('reauth_tokens').selectAll().execute(),
      await db.selectFrom('connect_sessions').selectAll().execute(),
    ]);
    expect(secrets.length).toBeGreaterThan(5);
    for (const secret of secrets) expect(dump).not.toContain(secret);
    expect(codes.length).toBeGreaterThan(3);
    for (const code of codes) expect(dump).not.toMatch(new RegExp(`(?<![A-Za-z0-9])${code}(?![A-Za-z0-9])`));
  });
});

describe('reauthorisation expiry (injected clock)', () => {
  let c: TestServer;
  let offset = 0;
  beforeAll(async () => {
    c = await startTestServer({ clock: () => Date.now() + offset });
  });
  afterAll(async () => {
    await c?.close();
  });

  it('accepts a token for 10 minutes, then answers 410 GONE', async () => {
    const { api } = c;
    const account = await createSandboxAccount(api, 'alice');
    const early = await reauthorise(api, account.id);
    const late = await reauthorise(api, account.id);
    offset += 9 * 60_000;
    expect((await openSession(api, early)).body.reauth.response_code).toBe(99);
    offset += 60_000 + 1;
    const expired = await openSession(api, late);
    expectError(expired, 410, 'GONE');
    expect(expired.body.error.message).toMatch(/expired/);
  });

  it('ends a connect session 10 minutes after it opened: commit answers 410 GONE', async () => {
    const { api } = c;
    const account = await createSandboxAccount(api, 'otp');
    const opened = await openSession(api, await reauthorise(api, account.id));
    expect(opened.body.reauth.response_code).toBe(102);
    const code = await latestCode(api, account.username);
    offset += 10 * 60_000 + 1;
    expectError(await commit(api, opened.body.id, { otp: code }), 410, 'GONE');
    // The login itself ends on its own deadline (its request expired with the moved clock).
    await statusUntil(api, account.id, (s) => !s.session_running);
  });
});
