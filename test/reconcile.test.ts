import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Connector, Movement } from '../src/connectors/sdk.js';
import { newId } from '../src/core/ids.js';
import { makeKeysService } from '../src/keys/service.js';
import { type Api, makeApi } from './helpers/api.js';
import { launchChromium, newContext, PHONE, screenshot, signInPage } from './helpers/browser.js';
import { createSandboxAccount, eventually, nextEvent, scrape, sessionEnd } from './helpers/flows.js';
import { startReceiver } from './helpers/receiver.js';
import { startTestServer, type TestServer } from './helpers/server.js';

/**
 * The bank side: the sandbox bank logs in as usual, and its movements are the ones a test hands it
 * (by username), so each test decides exactly what arrives.
 */
function scriptedBank() {
  const movements = new Map<string, Omit<Movement, 'bank_account_id'>[]>();
  let counter = 0;
  return {
    add(username: string, items: { amount: string; name: string; reference?: string | null; booked_at?: string }[]) {
      const list = movements.get(username) ?? [];
      for (const item of items)
        list.push({
          id: `tx-${++counter}`,
          booked_at: item.booked_at ?? new Date().toISOString().slice(0, 10),
          amount: item.amount,
          currency: 'EUR',
          name: item.name,
          reference: item.reference ?? null,
        });
      movements.set(username, list);
    },
    connectors: (builtin: Connector[]) =>
      builtin.map((connector) => ({
        ...connector,
        login: async (ctx: Parameters<Connector['login']>[0]) => {
          const session = await connector.login(ctx);
          return {
            bankAccounts: () => session.bankAccounts(),
            balances: () => session.balances(),
            identity: () => session.identity(),
            close: () => session.close(),
            movements: async () => {
              const [first] = await session.bankAccounts();
              return (movements.get(ctx.credentials.username ?? '') ?? []).map((m) => ({
                ...m,
                bank_account_id: first!.id,
              }));
            },
          };
        },
      })),
  };
}

let t: TestServer;
let api: Api;
const bank = scriptedBank();

beforeAll(async () => {
  t = await startTestServer({ connectors: bank.connectors });
  api = t.api;
});
afterAll(async () => {
  await t?.close();
});

let serial = 0;
const ext = (name: string) => `${name}-${process.pid}-${++serial}`;

/** A sandbox account whose first login has ended (so later scrapes only bring what a test adds). */
async function account(): Promise<{ id: string; username: string }> {
  const created = await createSandboxAccount(api, 'alice');
  expect((await sessionEnd(api, await scrape(api, created.id))).state).toBe('succeeded');
  return created;
}

/** The bank books these movements; a scrape stores them and reconciliation looks at them. */
async function arrive(
  acc: { id: string; username: string },
  items: Parameters<ReturnType<typeof scriptedBank>['add']>[1],
) {
  bank.add(acc.username, items);
  expect((await sessionEnd(api, await scrape(api, acc.id))).state).toBe('succeeded');
}

async function expectPayment(body: Record<string, unknown>, status = 201): Promise<any> {
  const reply = await api.post('/v1/expected-payments', body);
  expect(reply.status, JSON.stringify(reply.body)).toBe(status);
  return reply.body;
}

async function until(id: string, state: string, client: Api = api): Promise<any> {
  return (
    await eventually(
      () => client.get(`/v1/expected-payments/${id}`),
      (r) => r.body.state === state,
    )
  ).body;
}

async function movementsOf(accountId: string): Promise<any[]> {
  return (await api.get(`/v1/accounts/${accountId}/movements`)).body.data;
}

describe('matching', () => {
  it('settles a payment registered before its movement, with an exact match, and sends a signed payment_matched', async () => {
    const hook = await startReceiver();
    const endpoint = await api.post('/v1/webhooks', { url: hook.url, events: ['payment_matched'] });
    expect(endpoint.status).toBe(201);
    try {
      const acc = await account();
      const payment = await expectPayment({
        external_id: ext('order'),
        account_id: acc.id,
        amount: '125.5',
        currency: 'eur',
        payer_name: 'Jérôme Dupont',
        metadata: { order: 42 },
      });
      expect(payment).toMatchObject({
        state: 'pending',
        amount: '125.50',
        currency: 'EUR',
        match: null,
        source: 'api',
      });
      const matched = nextEvent(t, 'payment_matched', acc.id);
      await arrive(acc, [{ amount: '125.50', name: 'DUPONT, JEROME' }]);
      const event = await matched;
      expect((event.data as any).id).toBe(payment.id);
      const settled = await until(payment.id, 'matched');
      const [movement] = await movementsOf(acc.id);
      expect(settled.match).toMatchObject({ movement: { id: movement.id, amount: '125.50' }, matched_by: 'auto' });
      expect(settled.match.score).toBeGreaterThan(0.4);
      expect(settled.match.reasons).toEqual(
        expect.arrayContaining(['amount', 'currency', 'date_window', 'name_exact']),
      );
      expect(settled.metadata).toEqual({ order: 42 });

      const [delivery] = await hook.waitFor(1);
      const verified = new Webhook(endpoint.body.secret).verify(delivery!.body, {
        'webhook-id': String(delivery!.headers['webhook-id']),
        'webhook-timestamp': String(delivery!.headers['webhook-timestamp']),
        'webhook-signature': String(delivery!.headers['webhook-signature']),
      }) as any;
      expect(verified).toMatchObject({ type: 'payment_matched', status: 'payment.matched', data: { id: payment.id } });
    } finally {
      await api.delete(`/v1/webhooks/${endpoint.body.id}`);
      await hook.close();
    }
  });

  it('settles a payment registered after its movement at once', async () => {
    const acc = await account();
    await arrive(acc, [{ amount: '19.99', name: 'Anna Schmidt' }]);
    const [movement] = await movementsOf(acc.id);
    const payment = await expectPayment({
      external_id: ext('late'),
      account_id: acc.id,
      amount: '19.99',
      currency: 'EUR',
      payer_name: 'anna schmidt',
    });
    expect(payment).toMatchObject({ state: 'matched', match: { movement: { id: movement.id } } });
  });

  it('matches on the reference despite a different payer name', async () => {
    const acc = await account();
    const payment = await expectPayment({
      external_id: ext('ref'),
      account_id: acc.id,
      amount: '300.00',
      currency: 'EUR',
      payer_name: 'Acme Trading BV',
      reference: 'INV-2026/0042',
    });
    await arrive(acc, [{ amount: '300', name: 'J. Smith Holding', reference: 'payment inv 2026 0042 thanks' }]);
    const settled = await until(payment.id, 'matched');
    expect(settled.match.reasons).toContain('reference');
    expect(settled.match.reasons).not.toContain('name_similar');
  });

  it('picks the right one of two payments of the same amount by the payer name', async () => {
    const acc = await account();
    const martin = await expectPayment({
      external_id: ext('a'),
      account_id: acc.id,
      amount: '50.00',
      currency: 'EUR',
      payer_name: 'Jérôme Martin',
    });
    const bernard = await expectPayment({
      external_id: ext('b'),
      account_id: acc.id,
      amount: '50.00',
      currency: 'EUR',
      payer_name: 'Sophie Bernard',
    });
    await arrive(acc, [{ amount: '50.00', name: 'MARTIN JEROME.' }]);
    await until(martin.id, 'matched');
    expect((await api.get(`/v1/expected-payments/${bernard.id}`)).body.state).toBe('pending');
  });

  it('never guesses between equally good movements: a person resolves it, through the API', async () => {
    const acc = await account();
    await arrive(acc, [
      { amount: '80.00', name: 'Claire Petit' },
      { amount: '80.00', name: 'Claire Petit' },
    ]);
    const [first, second] = await movementsOf(acc.id);
    const ambiguous = nextEvent(t, 'payment_ambiguous', acc.id);
    const payment = await expectPayment({
      external_id: ext('amb'),
      account_id: acc.id,
      amount: '80',
      currency: 'EUR',
      payer_name: 'Claire Petit',
    });
    expect(payment.state).toBe('ambiguous');
    expect(payment.candidates.map((c: any) => c.movement.id).sort()).toEqual([first.id, second.id].sort());
    expect((await ambiguous).data).toMatchObject({ id: payment.id, state: 'ambiguous' });

    const resolved = await api.post(`/v1/expected-payments/${payment.id}/resolve`, { movement_id: second.id });
    expect(resolved.status, JSON.stringify(resolved.body)).toBe(200);
    expect(resolved.body).toMatchObject({ state: 'matched', candidates: [], match: { movement: { id: second.id } } });
    expect(resolved.body.match.reasons).toContain('manual');
    expect(resolved.body.match.matched_by).toMatch(/^api_key:/);

    // The other movement is still free: a second order of the same payer takes it.
    const next = await expectPayment({
      external_id: ext('amb2'),
      account_id: acc.id,
      amount: '80',
      currency: 'EUR',
      payer_name: 'Claire Petit',
    });
    expect(next).toMatchObject({ state: 'matched', match: { movement: { id: first.id } } });
    // One movement settles at most one payment.
    const third = await expectPayment({
      external_id: ext('amb3'),
      account_id: acc.id,
      amount: '80',
      currency: 'EUR',
      payer_name: 'Claire Petit',
    });
    const taken = await api.post(`/v1/expected-payments/${third.id}/resolve`, { movement_id: first.id });
    expect(taken.status).toBe(409);
    expect(taken.body.error.code).toBe('CONFLICT');
  });

  it('marks two equally good payments ambiguous over one movement; resolving one reopens the other', async () => {
    const acc = await account();
    const one = await expectPayment({
      external_id: ext('p1'),
      account_id: acc.id,
      amount: '61.00',
      currency: 'EUR',
      payer_name: 'Lukas Weber',
    });
    const two = await expectPayment({
      external_id: ext('p2'),
      account_id: acc.id,
      amount: '61.00',
      currency: 'EUR',
      payer_name: 'Lukas Weber',
    });
    await arrive(acc, [{ amount: '61.00', name: 'WEBER LUKAS' }]);
    const a = await until(one.id, 'ambiguous');
    await until(two.id, 'ambiguous');
    const movementId = a.candidates[0].movement.id;
    expect((await api.post(`/v1/expected-payments/${one.id}/resolve`, { movement_id: movementId })).status).toBe(200);
    const other = (await api.get(`/v1/expected-payments/${two.id}`)).body;
    expect(other).toMatchObject({ state: 'pending', candidates: [] });
    expect((await api.get(`/v1/expected-payments?state=ambiguous&account_id=${acc.id}`)).body.data).toEqual([]);
  });

  it('forwards every incoming movement of a passthrough account as payment_received, without matching', async () => {
    const acc = await account();
    const set = await api.put(`/v1/accounts/${acc.id}/reconciliation`, { mode: 'passthrough' });
    expect(set.status, JSON.stringify(set.body)).toBe(200);
    expect(set.body).toMatchObject({ mode: 'passthrough', source_url: null });
    const payment = await expectPayment({
      external_id: ext('pt'),
      account_id: acc.id,
      amount: '10.00',
      currency: 'EUR',
      payer_name: 'Eva Horn',
    });
    const received = nextEvent(t, 'payment_received', acc.id);
    await arrive(acc, [
      { amount: '10.00', name: 'Eva Horn' },
      { amount: '-4.00', name: 'Coffee' },
    ]);
    expect((await received).data).toMatchObject({ amount: '10.00', name: 'Eva Horn' });
    expect((await api.get(`/v1/expected-payments/${payment.id}`)).body.state).toBe('pending');
  });
});

describe('creating expected payments', () => {
  it('is idempotent on external_id: the same content answers the same payment, other content 409', async () => {
    const acc = await account();
    const body = {
      external_id: ext('idem'),
      account_id: acc.id,
      amount: '12.00',
      currency: 'EUR',
      payer_name: 'Ola Nordmann',
    };
    const first = await expectPayment(body, 201);
    const again = await expectPayment({ ...body, amount: '12' }, 200);
    expect(again.id).toBe(first.id);
    const changed = await api.post('/v1/expected-payments', { ...body, amount: '13.00' });
    expect(changed.status).toBe(409);
    expect(changed.body.error.code).toBe('CONFLICT');
    const batch = await api.post('/v1/expected-payments/batch', {
      payments: [body, { ...body, external_id: ext('idem-new') }],
    });
    expect(batch.status, JSON.stringify(batch.body)).toBe(200);
    expect(batch.body).toMatchObject({ created: 1, existing: 1 });
    expect(batch.body.data[0].id).toBe(first.id);
    const listed = await api.get(`/v1/expected-payments?external_id=${encodeURIComponent(body.external_id)}`);
    expect(listed.body.data).toHaveLength(1);
  });

  it('refuses bad input with a clear 4xx and writes nothing of a refused batch', async () => {
    const acc = await account();
    const base = { account_id: acc.id, currency: 'EUR', payer_name: 'Bad Input', amount: '1.00' };
    const cases: [Record<string, unknown>, string][] = [
      [{ amount: '-5.00' }, '/amount'],
      [{ amount: '0' }, '/amount'],
      [{ amount: '12,50' }, '/amount'],
      [{ amount: '1e3' }, '/amount'],
      [{ amount: '12.345' }, '/amount'],
      [{ amount: 12.5 }, '/amount'],
      [{ currency: 'XXY' }, '/currency'],
      [{ payer_name: '  ' }, '/payer_name'],
      [{ expected_date: '2026-02-30' }, '/expected_date'],
      [{ expires_at: '2001-01-01T00:00:00Z' }, '/expires_at'],
    ];
    for (const [change, path] of cases) {
      const reply = await api.post('/v1/expected-payments', { ...base, external_id: ext('bad'), ...change });
      expect(reply.status, JSON.stringify(change)).toBe(400);
      expect(reply.body.error.code).toBe('VALIDATION_FAILED');
      expect(reply.body.error.details.map((d: any) => d.path).join(' ')).toContain(path);
    }
    const unknownAccount = await api.post('/v1/expected-payments', {
      ...base,
      external_id: ext('bad'),
      account_id: 'acc_nope',
    });
    expect(unknownAccount.status).toBe(404);

    const good = (i: number) => ({ ...base, external_id: ext(`batch${i}`) });
    const tooMany = await api.post('/v1/expected-payments/batch', {
      payments: Array.from({ length: 1001 }, (_, i) => good(i)),
    });
    expect(tooMany.status).toBe(400);
    const dupes = [good(1), good(2)];
    const duplicate = await api.post('/v1/expected-payments/batch', { payments: [...dupes, { ...dupes[0] }] });
    expect(duplicate.status).toBe(400);
    expect(duplicate.body.error.details[0].path).toBe('/payments/2/external_id');
    const oneBad = await api.post('/v1/expected-payments/batch', {
      payments: [...dupes, { ...good(3), amount: '-1' }],
    });
    expect(oneBad.status).toBe(400);
    expect(oneBad.body.error.details[0].path).toBe('/payments/2/amount');
    for (const p of dupes)
      expect((await api.get(`/v1/expected-payments?external_id=${p.external_id}`)).body.data).toEqual([]);
    const all = await api.post('/v1/expected-payments/batch', { payments: dupes });
    expect(all.body).toMatchObject({ created: 2, existing: 0 });
  });

  it('lists with filters and a cursor, and cancels only open payments', async () => {
    const acc = await account();
    const ids: string[] = [];
    for (let i = 0; i < 3; i++)
      ids.push(
        (
          await expectPayment({
            external_id: ext('list'),
            account_id: acc.id,
            amount: `${7 + i}.00`,
            currency: 'EUR',
            payer_name: 'List Person',
          })
        ).id,
      );
    const first = await api.get(`/v1/expected-payments?account_id=${acc.id}&limit=2`);
    expect(first.body.data.map((p: any) => p.id)).toEqual([ids[2], ids[1]]);
    const second = await api.get(`/v1/expected-payments?account_id=${acc.id}&limit=2&cursor=${first.body.next_cursor}`);
    expect(second.body).toMatchObject({ data: [{ id: ids[0] }], next_cursor: null });
    const cancelled = await api.post(`/v1/expected-payments/${ids[0]}/cancel`);
    expect(cancelled.body).toMatchObject({ state: 'cancelled', cancel_reason: 'cancelled_by_caller' });
    expect((await api.post(`/v1/expected-payments/${ids[0]}/cancel`)).status).toBe(409);
    expect((await api.get(`/v1/expected-payments?account_id=${acc.id}&state=cancelled`)).body.data).toHaveLength(1);
    expect((await api.get('/v1/expected-payments?cursor=zzz')).status).toBe(400);
  });
});

describe('reference', () => {
  it('documents the routes, the payment object and the new scopes and events in /openapi.json', async () => {
    const doc = (await api.get('/openapi.json', null)).body;
    for (const path of [
      '/v1/expected-payments',
      '/v1/expected-payments/batch',
      '/v1/expected-payments/{id}',
      '/v1/expected-payments/{id}/cancel',
      '/v1/expected-payments/{id}/resolve',
      '/v1/reconciliation/settings',
      '/v1/accounts/{id}/reconciliation',
      '/v1/accounts/{id}/reconciliation/poll',
    ])
      expect(doc.paths[path], path).toBeDefined();
    expect(doc.paths['/expected-payments']).toBeUndefined();
    expect(doc.components.schemas.ExpectedPayment.properties.state).toBeDefined();
    const hook = await api.post('/v1/webhooks', {
      url: 'http://127.0.0.1:9/x',
      events: ['payment_expired', 'payment_received'],
    });
    expect(hook.status).toBe(201);
    await api.delete(`/v1/webhooks/${hook.body.id}`);
  });

  it('keeps the matching window per organization', async () => {
    expect((await api.get('/v1/reconciliation/settings')).body).toEqual({
      window_days_before: 5,
      window_days_after: null,
    });
    const bad = await api.put('/v1/reconciliation/settings', { window_days_before: -1, window_days_after: null });
    expect(bad.status).toBe(400);
    const acc = await account();
    await arrive(acc, [
      {
        amount: '88.00',
        name: 'Window Test',
        booked_at: new Date(Date.now() - 8 * 86_400_000).toISOString().slice(0, 10),
      },
    ]);
    // Booked 8 days before registration: outside the default window.
    const outside = await expectPayment({
      external_id: ext('win'),
      account_id: acc.id,
      amount: '88.00',
      currency: 'EUR',
      payer_name: 'Window Test',
    });
    expect(outside.state).toBe('pending');
    const set = await api.put('/v1/reconciliation/settings', { window_days_before: 10, window_days_after: 30 });
    expect(set.body).toEqual({ window_days_before: 10, window_days_after: 30 });
    try {
      const inside = await expectPayment({
        external_id: ext('win'),
        account_id: acc.id,
        amount: '88.00',
        currency: 'EUR',
        payer_name: 'Window Test',
      });
      expect(inside.state).toBe('matched');
    } finally {
      await api.put('/v1/reconciliation/settings', { window_days_before: 5, window_days_after: null });
    }
  });
});

describe('isolation', () => {
  async function makeKey(scopes: string, accountIds: string[] | null, orgId: string): Promise<string> {
    const keys = makeKeysService({ db: t.server.store.db, clock: Date.now });
    const created = await keys.create({ orgId, name: `test ${scopes}`, scopes, accountIds, createdBy: null });
    if (!created.ok) throw new Error(created.message);
    return created.value.key;
  }

  it('keeps organizations and accounts apart: no reading, resolving or matching across them', async () => {
    const orgId = newId('org');
    await t.server.store.db
      .insertInto('organizations')
      .values({ id: orgId, name: 'Other', created_at: Date.now() })
      .execute();
    const theirApi = makeApi(t.url, await makeKey('*', null, orgId));
    const theirs = await createSandboxAccount(theirApi, 'alice');
    expect((await sessionEnd(theirApi, await scrape(theirApi, theirs.id))).state).toBe('succeeded');

    const mine = await account();
    const other = await account();
    // An organization-wide payment of mine; their movement of the same amount and name must not settle it.
    const wide = await expectPayment({
      external_id: ext('wide'),
      amount: '77.70',
      currency: 'EUR',
      payer_name: 'Noor Visser',
    });
    bank.add(theirs.username, [{ amount: '77.70', name: 'Noor Visser' }]);
    expect((await sessionEnd(theirApi, await scrape(theirApi, theirs.id))).state).toBe('succeeded');
    const [theirMovement] = (await theirApi.get(`/v1/accounts/${theirs.id}/movements`)).body.data;
    // Theirs: same external_id is theirs to use.
    const theirPayment = await theirApi.post('/v1/expected-payments', {
      external_id: wide.external_id,
      amount: '77.70',
      currency: 'EUR',
      payer_name: 'Noor Visser',
    });
    expect(theirPayment.status).toBe(201);
    expect(theirPayment.body.state).toBe('matched');
    expect((await api.get(`/v1/expected-payments/${wide.id}`)).body.state).toBe('pending');
    expect((await api.get(`/v1/expected-payments/${theirPayment.body.id}`)).status).toBe(404);
    expect((await api.post(`/v1/expected-payments/${wide.id}/resolve`, { movement_id: theirMovement.id })).status).toBe(
      404,
    );
    expect((await theirApi.get(`/v1/expected-payments/${wide.id}`)).status).toBe(404);
    expect((await theirApi.get('/v1/expected-payments')).body.data.map((p: any) => p.id)).toEqual([
      theirPayment.body.id,
    ]);

    // An account-bound payment is not settled by a movement of another account of the same organization.
    const bound = await expectPayment({
      external_id: ext('bound'),
      account_id: mine.id,
      amount: '33.00',
      currency: 'EUR',
      payer_name: 'Tom Bakker',
    });
    await arrive(other, [{ amount: '33.00', name: 'Tom Bakker' }]);
    const [otherMovement] = await movementsOf(other.id);
    const refused = await api.post(`/v1/expected-payments/${bound.id}/resolve`, { movement_id: otherMovement.id });
    expect(refused.status).toBe(400);
    expect((await api.get(`/v1/expected-payments/${bound.id}`)).body.state).toBe('pending');

    // A key restricted to the other account sees neither my account's payments nor organization-wide ones.
    const restricted = makeApi(t.url, await makeKey('reconcile:read,reconcile:write', [other.id], t.orgId));
    expect((await restricted.get(`/v1/expected-payments/${bound.id}`)).status).toBe(403);
    expect((await restricted.get(`/v1/expected-payments/${wide.id}`)).status).toBe(403);
    expect((await restricted.get('/v1/expected-payments')).body.data).toEqual([]);
    expect(
      (
        await restricted.post('/v1/expected-payments', {
          external_id: ext('r'),
          amount: '1.00',
          currency: 'EUR',
          payer_name: 'X',
        })
      ).status,
    ).toBe(403);
    const readOnly = makeApi(t.url, await makeKey('reconcile:read', null, t.orgId));
    expect((await readOnly.post(`/v1/expected-payments/${bound.id}/cancel`)).status).toBe(403);
  });
});

/** A pull source: serves the list it is given and records the requests' headers. */
async function startSource(): Promise<{
  url: string;
  list: unknown[];
  headers: IncomingHttpHeaders[];
  /** Resolves once `count` requests have arrived. */
  requests(count: number): Promise<void>;
  close(): Promise<void>;
}> {
  const waiters: { count: number; resolve: () => void }[] = [];
  const state = {
    url: '',
    list: [] as unknown[],
    headers: [] as IncomingHttpHeaders[],
    requests: (count: number) =>
      new Promise<void>((resolve) => {
        if (state.headers.length >= count) resolve();
        else waiters.push({ count, resolve });
      }),
    close: async () => {},
  };
  const server: Server = createServer((req, res) => {
    state.headers.push(req.headers);
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ payments: state.list }));
    for (const waiter of waiters.filter((w) => state.headers.length >= w.count)) waiter.resolve();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/orders`;
  state.close = () => new Promise((resolve) => server.close(() => resolve()));
  return state;
}

describe('pull mode', () => {
  it('polls a signed source, creates its orders, and cancels the ones that vanish from it', async () => {
    const source = await startSource();
    try {
      const acc = await account();
      source.list = [
        { external_id: ext('pull'), amount: '15.00', currency: 'EUR', payer_name: 'Ines Vos' },
        { external_id: ext('pull'), amount: '16.00', currency: 'EUR', payer_name: 'Bram Smit' },
      ];
      const set = await api.put(`/v1/accounts/${acc.id}/reconciliation`, {
        source_url: source.url,
        poll_seconds: 3600,
      });
      expect(set.status, JSON.stringify(set.body)).toBe(200);
      const polled = await api.post(`/v1/accounts/${acc.id}/reconciliation/poll`);
      expect(polled.body).toMatchObject({ created: 2, cancelled: 0, error: null });
      const secret = (await api.get(`/v1/accounts/${acc.id}/signing-secret`)).body.secret;
      const request = source.headers.at(-1)!;
      expect(() =>
        new Webhook(secret).verify('', {
          'webhook-id': String(request['webhook-id']),
          'webhook-timestamp': String(request['webhook-timestamp']),
          'webhook-signature': String(request['webhook-signature']),
        }),
      ).not.toThrow();
      const listed = (await api.get(`/v1/expected-payments?account_id=${acc.id}`)).body.data;
      expect(listed.map((p: any) => p.source)).toEqual(['pull', 'pull']);

      const [kept] = source.list as any[];
      source.list = [kept];
      const again = await api.post(`/v1/accounts/${acc.id}/reconciliation/poll`);
      expect(again.body).toMatchObject({ created: 0, cancelled: 1, unchanged: 1 });
      const after = (await api.get(`/v1/expected-payments?account_id=${acc.id}`)).body.data;
      const byExt = new Map<string, any>(after.map((p: any) => [p.external_id, p]));
      expect(byExt.get(kept.external_id)).toMatchObject({ state: 'pending' });
      expect(after.find((p: any) => p.external_id !== kept.external_id)).toMatchObject({
        state: 'cancelled',
        cancel_reason: 'vanished_from_source',
      });

      // A broken list changes nothing and is reported.
      source.list = [kept, { external_id: 'x', amount: '-1', currency: 'EUR', payer_name: 'Bad' }];
      const broken = await api.post(`/v1/accounts/${acc.id}/reconciliation/poll`);
      expect(broken.body.error).toContain('/payments/1/amount');
      expect((await api.get(`/v1/expected-payments/${byExt.get(kept.external_id)!.id}`)).body.state).toBe('pending');
      expect((await api.get(`/v1/accounts/${acc.id}/reconciliation`)).body.poll_error).toContain('/payments/1/amount');
    } finally {
      await source.close();
    }
  });

  it('applies one list once when two polls of the same source run at once', async () => {
    const source = await startSource();
    try {
      const acc = await account();
      source.list = [
        { external_id: ext('race'), amount: '17.00', currency: 'EUR', payer_name: 'Ada Kok' },
        { external_id: ext('race'), amount: '18.00', currency: 'EUR', payer_name: 'Piet Bos' },
      ];
      const set = await api.put(`/v1/accounts/${acc.id}/reconciliation`, {
        source_url: source.url,
        poll_seconds: 3600,
      });
      expect(set.status, JSON.stringify(set.body)).toBe(200);
      const polls = await Promise.all([0, 1, 2].map(() => api.post(`/v1/accounts/${acc.id}/reconciliation/poll`)));
      for (const poll of polls) expect(poll.status, JSON.stringify(poll.body)).toBe(200);
      expect(polls.reduce((n, poll) => n + poll.body.created, 0)).toBeLessThanOrEqual(2);
      const listed = (await api.get(`/v1/expected-payments?account_id=${acc.id}`)).body.data;
      expect(listed).toHaveLength(2);
    } finally {
      await source.close();
    }
  });

  it('refuses a private source address unless private URLs are allowed', async () => {
    const strict = await startTestServer({ env: { OTPILOT_ALLOW_PRIVATE_URLS: 'false' } });
    try {
      const acc = await createSandboxAccount(strict.api, 'alice');
      const reply = await strict.api.put(`/v1/accounts/${acc.id}/reconciliation`, {
        source_url: 'http://127.0.0.1:9/orders',
      });
      expect(reply.status).toBe(400);
      expect(reply.body.error.message).toContain('private');
    } finally {
      await strict.close();
    }
  });
});

describe('pull schedule', () => {
  it('polls a source by itself, again once its interval has passed', async () => {
    let offset = 0;
    const clocked = await startTestServer({ clock: () => Date.now() + offset });
    const source = await startSource();
    try {
      const acc = await createSandboxAccount(clocked.api, 'alice');
      source.list = [{ external_id: ext('sched'), amount: '9.00', currency: 'EUR', payer_name: 'Sam Roos' }];
      const set = await clocked.api.put(`/v1/accounts/${acc.id}/reconciliation`, {
        source_url: source.url,
        poll_seconds: 60,
      });
      expect(set.status).toBe(200);
      // Never polled: due at once.
      await source.requests(1);
      const created = await eventually(
        () => clocked.api.get(`/v1/expected-payments?account_id=${acc.id}`),
        (r) => r.body.data.length === 1,
      );
      expect(created.body.data[0]).toMatchObject({ source: 'pull', state: 'pending' });
      source.list = [];
      offset += 61_000;
      await source.requests(2);
      await until(created.body.data[0].id, 'cancelled', clocked.api);
      expect(source.headers).toHaveLength(2);
    } finally {
      await source.close();
      await clocked.close();
    }
  });
});

describe('expiry', () => {
  it('expires an unpaid payment at its expiry and sends payment_expired', async () => {
    let offset = 0;
    const clocked = await startTestServer({ clock: () => Date.now() + offset, connectors: bank.connectors });
    try {
      const acc = await createSandboxAccount(clocked.api, 'alice');
      const created = await clocked.api.post('/v1/expected-payments', {
        external_id: ext('exp'),
        account_id: acc.id,
        amount: '5.00',
        currency: 'EUR',
        payer_name: 'Late Payer',
      });
      expect(created.status).toBe(201);
      expect(Date.parse(created.body.expires_at) - Date.parse(created.body.created_at)).toBe(30 * 86_400_000);
      const expired = nextEvent(clocked, 'payment_expired', acc.id);
      offset += 31 * 86_400_000;
      expect((await expired).data).toMatchObject({ id: created.body.id, state: 'expired' });
      expect((await clocked.api.get(`/v1/expected-payments/${created.body.id}`)).body.state).toBe('expired');
      expect((await clocked.api.post(`/v1/expected-payments/${created.body.id}/cancel`)).status).toBe(409);
    } finally {
      await clocked.close();
    }
  });
});

describe('dashboard', () => {
  it('shows an ambiguous payment with its candidates side by side at 375 px, and settles it on a click', async () => {
    const acc = await account();
    await arrive(acc, [
      { amount: '42.00', name: 'Pia Kramer', reference: 'Order 7' },
      { amount: '42.00', name: 'KRAMER PIA', reference: 'order 7' },
    ]);
    const payment = await expectPayment({
      external_id: ext('web'),
      account_id: acc.id,
      amount: '42.00',
      currency: 'EUR',
      payer_name: 'Pia Kramer',
      reference: 'ORDER-7',
    });
    expect(payment.state).toBe('ambiguous');
    const browser = await launchChromium();
    try {
      const page = await (await newContext(browser, PHONE)).newPage();
      await signInPage(page, t.url, 'admin@otpilot.local', t.server.bootstrap!.adminPassword);
      await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Reconciliation' }).click();
      const region = page.getByRole('region', { name: `Resolve ${payment.external_id}` });
      const buttons = region.getByRole('button', { name: 'Settle with this' });
      await buttons.nth(1).waitFor();
      expect(await buttons.count()).toBe(2);
      await region.getByText('KRAMER PIA').waitFor();
      // Nothing sticks out sideways on a phone.
      expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(PHONE.width);
      await screenshot(page, 'reconciliation-phone');
      await buttons.first().click();
      await page.getByText('Nothing to resolve').waitFor();
      const settled = (await api.get(`/v1/expected-payments/${payment.id}`)).body;
      expect(settled).toMatchObject({ state: 'matched', match: { matched_by: expect.stringMatching(/^user:/) } });
    } finally {
      await browser.close();
    }
  });
});
