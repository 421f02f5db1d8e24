import { afterEach, describe, expect, it } from 'vitest';
import type { EventEnvelope } from '../src/core/events.js';
import { selectEvents, toEnvelope } from '../src/events/outbox.js';
import { movementView } from '../src/movements/view.js';
import { createSandboxAccount, listedMovements, scrape, sessionEnd } from './helpers/flows.js';
import { type Receiver, startReceiver } from './helpers/receiver.js';
import { startTestServer, type TestServer } from './helpers/server.js';

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

async function server(): Promise<TestServer> {
  const t = await startTestServer();
  cleanup.push(() => t.close());
  return t;
}

async function receiver(): Promise<Receiver> {
  const r = await startReceiver();
  cleanup.push(() => r.close());
  return r;
}

/** The stored event rows of one account, oldest first. */
function storedRows(t: TestServer, accountId: string) {
  return selectEvents(t.server.store.db).where('e.account_id', '=', accountId).orderBy('e.seq').execute();
}

describe('compact bank_movement events', () => {
  it('store a reference, and webhooks deliver the movement exactly as the data API shows it', async () => {
    const t = await server();
    const hook = await receiver();
    expect((await t.api.post('/v1/webhooks', { url: hook.url, events: ['bank_movement'] })).status).toBe(201);
    // The envelopes this process's subscribers got at commit, built from the emitted objects.
    const published = new Map<string, EventEnvelope>();
    const unsubscribe = t.server.bus.subscribe('event', (payload) => {
      const envelope = payload as EventEnvelope;
      if (envelope.type === 'bank_movement') published.set(envelope.id, envelope);
    });
    cleanup.push(async () => unsubscribe());

    const account = await createSandboxAccount(t.api, 'alice');
    const session = await sessionEnd(t.api, await scrape(t.api, account.id));
    expect(session.movements_new).toBeGreaterThan(100);

    // No copy in the outbox: each row names its movement, its data is empty.
    const rows = (await storedRows(t, account.id)).filter((row) => row.type === 'bank_movement');
    expect(rows).toHaveLength(session.movements_new);
    for (const row of rows) {
      expect(row.data).toBe('');
      expect(row.movement_id).toMatch(/^mov_/);
    }

    const movements = await listedMovements(t.api, account.id);
    expect(movements.size).toBe(session.movements_new);
    const delivered = await hook.waitFor(session.movements_new);
    expect(new Set(delivered.map((r) => r.json.id)).size).toBe(session.movements_new);
    for (const request of delivered) {
      const body = request.json as EventEnvelope & { data: { id: string } };
      expect(Object.keys(body).sort()).toEqual(['account_id', 'data', 'id', 'occurred_at', 'status', 'type']);
      expect(body).toMatchObject({ type: 'bank_movement', status: 'movement.created', account_id: account.id });
      expect(body.data).toEqual(movements.get(body.data.id));
      // What in-process subscribers got at commit is what the delivery read back.
      expect(published.get(body.id)).toEqual(body);
    }
  }, 120_000);

  it('re-sent movements (notify) carry the movement too', async () => {
    const t = await server();
    const hook = await receiver();
    const account = await createSandboxAccount(t.api, 'alice', { silent_ingestion: true });
    await sessionEnd(t.api, await scrape(t.api, account.id));
    expect((await t.api.post('/v1/webhooks', { url: hook.url, events: ['bank_movement'] })).status).toBe(201);
    const [movement] = (await listedMovements(t.api, account.id)).values() as IterableIterator<{ id: string }>;
    const sent = await t.api.post(`/v1/accounts/${account.id}/movements/${movement!.id}/notify`);
    expect(sent.status).toBe(202);
    const [request] = await hook.waitFor(1);
    expect(request!.json).toMatchObject({ type: 'bank_movement', account_id: account.id, data: movement });
  });

  it('an event stored before the upgrade, with its copy, still delivers it', async () => {
    const t = await server();
    const hook = await receiver();
    const account = await createSandboxAccount(t.api, 'alice', { silent_ingestion: true });
    await sessionEnd(t.api, await scrape(t.api, account.id));
    const row = await t.server.store.db
      .selectFrom('movements')
      .selectAll()
      .where('account_id', '=', account.id)
      .orderBy('id')
      .executeTakeFirstOrThrow();
    expect((await t.api.post('/v1/webhooks', { url: hook.url, events: ['bank_movement'] })).status).toBe(201);
    // Written as before migration 0018: the movement's view copied into `data`, no reference.
    await t.server.transact(async (_trx, uow) =>
      uow.emit({ orgId: t.orgId, accountId: account.id, type: 'bank_movement', data: movementView(row) }),
    );
    const [stored] = (await storedRows(t, account.id)).filter((r) => r.type === 'bank_movement');
    expect(stored).toMatchObject({ movement_id: null });
    expect(JSON.parse(stored!.data)).toEqual(movementView(row));

    const [request] = await hook.waitFor(1);
    const movements = await listedMovements(t.api, account.id);
    expect(request!.json).toMatchObject({ id: stored!.id, type: 'bank_movement', data: movements.get(row.id) });
  });

  it('an event whose movement went with its deleted account is gone, as a pruned one is', async () => {
    const t = await server();
    const account = await createSandboxAccount(t.api, 'alice');
    await sessionEnd(t.api, await scrape(t.api, account.id));
    const before = (await storedRows(t, account.id)).filter((r) => r.type === 'bank_movement');
    expect(before.length).toBeGreaterThan(0);
    expect(before.every((row) => toEnvelope(row) !== null)).toBe(true);

    const { name } = (await t.api.get(`/v1/accounts/${account.id}`)).body;
    const deleted = await t.api.delete(`/v1/accounts/${account.id}`, { confirmation_name: name });
    expect(deleted.status).toBeLessThan(300);
    const after = (await storedRows(t, account.id)).filter((r) => r.type === 'bank_movement');
    expect(after).toHaveLength(before.length);
    expect(after.map(toEnvelope).every((envelope) => envelope === null)).toBe(true);
  });
});
