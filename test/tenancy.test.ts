import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Api, makeApi } from './helpers/api.js';
import { createSandboxAccount, pendingRequest, scrape, sessionEnd } from './helpers/flows.js';
import { type Receiver, startReceiver } from './helpers/receiver.js';
import { instanceAdminKey, startTestServer, type TestServer } from './helpers/server.js';

/*
 * Organizations: the instance administrator's API, and isolation over every route. The route list is
 * the server's own OpenAPI document, so a new route with an id is covered (or fails here) by default.
 */

let t: TestServer;
let receiver: Receiver;
/** A key of the first organization with `instance:admin` (as `otpilot keys create --scopes instance:admin` makes). */
let adminKey: string;
/** The second organization: its key (every scope) and an admin's dashboard session. */
let other: { id: string; api: Api; session: string };

beforeAll(async () => {
  t = await startTestServer();
  receiver = await startReceiver();
  adminKey = await instanceAdminKey(t);
  const org = await t.api.post('/v1/organizations', { name: 'Second', admin_email: 'admin@second.test' }, adminKey);
  expect(org.status, JSON.stringify(org.body)).toBe(201);
  const login = await t.api.post(
    '/auth/login',
    { email: 'admin@second.test', password: org.body.admin_password },
    null,
  );
  expect(login.status).toBe(200);
  other = { id: org.body.organization.id, api: makeApi(t.url, org.body.api_key), session: login.body.token };
});

afterAll(async () => {
  await receiver?.close();
  await t?.close();
});

describe('the organizations API', () => {
  it('is open to instance:admin keys only, which * never includes', async () => {
    expect((await t.api.get('/v1/organizations')).status).toBe(403);
    expect((await t.api.post('/v1/organizations', { name: 'X', admin_email: 'x@x.test' })).status).toBe(403);
    const list = await t.api.get('/v1/organizations', adminKey);
    expect(list.status).toBe(200);
    expect(list.body.data.map((o: { id: string }) => o.id)).toEqual([t.orgId, other.id]);
    expect(list.body.data[1]).toMatchObject({ name: 'Second', users: 1, accounts: 0 });
    // The dashboard cannot grant it, even to an admin.
    const session = (await t.api.post('/auth/login', { email: 'admin@second.test', password: 'wrong-password' }, null))
      .status;
    expect(session).toBe(401);
    const grant = await t.api.raw('/me/api-keys', {
      method: 'POST',
      headers: { authorization: `Bearer ${other.session}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'x', scopes: ['instance:admin'] }),
    });
    expect(grant.status).toBe(403);
  });

  it('creates users and keys in an organization, and refuses what is wrong with the documented errors', async () => {
    const user = await t.api.post(
      `/v1/organizations/${other.id}/users`,
      { email: 'Ops@Second.test', role: 'operator' },
      adminKey,
    );
    expect(user.status, JSON.stringify(user.body)).toBe(201);
    expect(user.body.user).toMatchObject({ email: 'ops@second.test', role: 'operator' });
    const signIn = await t.api.post(
      '/auth/login',
      { email: 'ops@second.test', password: user.body.temporary_password },
      null,
    );
    expect(signIn.body.user).toMatchObject({ email: 'ops@second.test' });
    const key = await t.api.post(
      `/v1/organizations/${other.id}/api-keys`,
      { name: 'reader', scopes: ['accounts:read'] },
      adminKey,
    );
    expect(key.status).toBe(201);
    expect((await t.api.get('/v1/accounts', key.body.key)).body.data).toEqual([]);
    // A key limited to some accounts cannot manage keys, whatever its scopes.
    const account = await other.api.post('/v1/accounts', {
      bank_id: 'sandbox',
      name: 'Second org account',
      credentials: { username: 'alice+second', password: 'x' },
    });
    expect(account.status).toBe(201);
    const limited = await t.api.post(
      `/v1/organizations/${other.id}/api-keys`,
      { name: 'limited', scopes: ['keys:read', 'keys:write'], account_ids: [account.body.id] },
      adminKey,
    );
    expect(limited.status, JSON.stringify(limited.body)).toBe(201);
    expect((await t.api.get('/v1/api-keys', limited.body.key)).status).toBe(403);
    expect((await t.api.delete(`/v1/api-keys/${key.body.id}`, undefined, limited.body.key)).status).toBe(403);

    const cases: [string, unknown, number, string][] = [
      ['/v1/organizations', { name: 'Again', admin_email: 'admin@second.test' }, 409, 'CONFLICT'],
      ['/v1/organizations', { name: '  ', admin_email: 'y@y.test' }, 400, 'VALIDATION_FAILED'],
      ['/v1/organizations', { name: 'Y', admin_email: 'not an address' }, 400, 'VALIDATION_FAILED'],
      [`/v1/organizations/${other.id}/users`, { email: 'ops@second.test', role: 'viewer' }, 409, 'CONFLICT'],
      ['/v1/organizations/org_unknown/users', { email: 'z@z.test', role: 'viewer' }, 404, 'NOT_FOUND'],
      [`/v1/organizations/${other.id}/api-keys`, { name: 'x', scopes: ['instance:admin'] }, 400, 'VALIDATION_FAILED'],
      ['/v1/organizations/org_unknown/api-keys', { name: 'x', scopes: ['*'] }, 404, 'NOT_FOUND'],
    ];
    for (const [path, body, status, code] of cases) {
      const reply = await t.api.post(path, body, adminKey);
      expect([path, reply.status, reply.body.error?.code]).toEqual([path, status, code]);
    }
  });
});

describe('isolation between organizations', () => {
  it("answers 404 to the second organization's key and users on every route with the first's ids", async () => {
    const api = t.api;
    // One of everything in the first organization.
    const alice = await createSandboxAccount(api, 'alice');
    const finished = await sessionEnd(api, await scrape(api, alice.id));
    expect(finished.state).toBe('succeeded');
    const movement = (await api.get(`/v1/accounts/${alice.id}/movements`)).body.data[0];
    const balances = await api.get(`/v1/accounts/${alice.id}/balances`);
    expect(balances.status).toBe(200);
    const sessionId = await scrape(api, t.tourAccountId);
    await pendingRequest(api, t.tourAccountId);
    const hook = await api.post('/v1/webhooks', { url: receiver.url });
    const test = await api.post(`/v1/webhooks/${hook.body.id}/test`);
    expect(test.status, JSON.stringify(test.body)).toBe(202);
    const delivery = (await api.get(`/v1/webhooks/${hook.body.id}/deliveries`)).body.data[0];
    const token = await api.post('/v1/app-tokens', { name: 'Books', allowed_origins: ['https://books.test'] });
    const relay = await api.post('/v1/relays', { provider: 'json' });
    const keyId = (await api.get('/v1/api-keys')).body.data[0].id;
    const payment = await api.post('/v1/expected-payments', {
      external_id: 'tenancy-1',
      account_id: alice.id,
      amount: '1.00',
      currency: 'EUR',
      payer_name: 'Somebody',
    });
    expect(payment.status, JSON.stringify(payment.body)).toBe(201);
    const ids: Record<string, string> = {
      accounts: alice.id,
      sessions: sessionId,
      webhooks: hook.body.id,
      delivery_id: delivery.id,
      movement_id: movement.id,
      results_id: balances.body.results_id,
      'app-tokens': token.body.id,
      relays: relay.body.id,
      'api-keys': keyId,
      organizations: t.orgId,
      'expected-payments': payment.body.id,
      banks: 'sandbox-web',
      version: '1.0.0',
      account_id: alice.id,
    };
    for (const [name, value] of Object.entries(ids)) {
      // Banks and script versions are instance-wide, named by the instance rather than by an organization's id.
      if (name !== 'banks' && name !== 'version') expect(value).toMatch(/^[a-z]{3}_/);
    }
    const accountName = (await api.get(`/v1/accounts/${alice.id}`)).body.name;
    /** Bodies that pass validation, so the answer is about the id and not the body. */
    const bodies: Record<string, unknown> = {
      'PATCH /v1/accounts/{id}': { name: 'taken over' },
      'DELETE /v1/accounts/{id}': { confirmation_name: accountName },
      'PUT /v1/accounts/{id}/config': { schedule: null },
      'POST /v1/accounts/{id}/otp': { code: '123456' },
      'PATCH /v1/webhooks/{id}': { enabled: false },
      'POST /v1/expected-payments/{id}/resolve': { movement_id: movement.id },
      'PUT /v1/accounts/{id}/reconciliation': { mode: 'match' },
      'POST /v1/organizations/{id}/users': { email: 'intruder@second.test', role: 'admin' },
      'POST /v1/organizations/{id}/api-keys': { name: 'intruder', scopes: ['*'] },
    };

    const doc = (await api.get('/openapi.json', null)).body as {
      paths: Record<string, Record<string, unknown>>;
    };
    const checked: string[] = [];
    const dashboard: string[] = [];
    for (const [path, operations] of Object.entries(doc.paths)) {
      // Key-authenticated routes with an id in the path. The widget's reconnects and Twilio's relay
      // are public, reached by capability ids and signatures of their own (tested in their files).
      if (!path.startsWith('/v1/') || !path.includes('{')) continue;
      for (const method of Object.keys(operations)) {
        const url = path.replace(/\{([^}]+)\}/g, (_, name: string) => {
          const owner = name === 'id' ? path.split('/')[2]! : name;
          const value = ids[owner];
          if (!value) throw new Error(`no first-organization id for {${name}} in ${path}: add one`);
          return value;
        });
        const label = `${method.toUpperCase()} ${path}`;
        const body = bodies[label];
        const init = (auth: string): RequestInit => ({
          method: method.toUpperCase(),
          headers: { authorization: auth, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
          ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        });
        // Instance administration is refused to organization keys whatever the id (scope first).
        const expected = path.startsWith('/v1/organizations/') || path.startsWith('/v1/banks/') ? 403 : 404;
        const viaKey = await api.raw(url, init(`Api-Key ${other.api.key}`));
        expect([label, viaKey.status], JSON.stringify(viaKey.body)).toEqual([label, expected]);
        expect(viaKey.body.error.code).toBe(expected === 404 ? 'NOT_FOUND' : 'FORBIDDEN');
        checked.push(label);
        // The dashboard mounts the same route without /v1, behind the user's session.
        const dashboardUrl = url.slice('/v1'.length);
        if (
          t.server.app.hasRoute({
            method: method.toUpperCase() as 'GET',
            url: path.slice(3).replace(/\{([^}]+)\}/g, ':$1'),
          })
        ) {
          const viaUser = await api.raw(dashboardUrl, init(`Bearer ${other.session}`));
          expect([`dashboard ${label}`, viaUser.status], JSON.stringify(viaUser.body)).toEqual([
            `dashboard ${label}`,
            404,
          ]);
          dashboard.push(label);
        }
      }
    }
    expect(checked.length).toBeGreaterThan(30);
    expect(dashboard.length).toBeGreaterThan(25);

    // Lists filtered by another organization's account: nothing of it.
    const requests = await other.api.get(`/v1/assistance-requests?account_id=${t.tourAccountId}`);
    expect([200, 404]).toContain(requests.status);
    expect(JSON.stringify(requests.body)).not.toContain(sessionId);
    for (const list of [
      '/v1/accounts',
      '/v1/webhooks',
      '/v1/app-tokens',
      '/v1/relays',
      '/v1/api-keys',
      '/v1/assistance-requests',
    ]) {
      const reply = await other.api.get(list);
      expect([list, reply.status]).toEqual([list, 200]);
      for (const value of Object.values(ids)) expect(JSON.stringify(reply.body)).not.toContain(value);
    }

    // Nothing of the first organization changed.
    expect((await api.get(`/v1/accounts/${alice.id}`)).body.name).toBe(accountName);
    expect((await api.get(`/v1/sessions/${sessionId}`)).body.state).toBe('awaiting_assistance');
    expect((await api.get(`/v1/webhooks/${hook.body.id}`)).body.enabled).toBe(true);
    expect((await api.get('/v1/api-keys')).body.data.find((k: { id: string }) => k.id === keyId).revoked_at).toBeNull();
    expect((await api.get('/v1/relays')).body.data).toHaveLength(1);
    expect((await api.get('/v1/app-tokens')).body.data).toHaveLength(1);
    expect((await api.get('/v1/organizations', adminKey)).body.data[1]).toMatchObject({ users: 2 });
  });
});
