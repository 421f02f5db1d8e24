import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bankLimitsOf, makeConnectorRegistry } from '../src/connectors/registry.js';
import type { Connector } from '../src/connectors/sdk.js';
import { makeClaimer } from '../src/engine/claim.js';
import { createSandboxAccount, scrape } from './helpers/flows.js';
import { startTestServer, type TestServer } from './helpers/server.js';

/*
 * How a worker picks queued sessions: fair share across organizations and per-bank caps. The
 * server's own engine is stopped so the sessions stay queued and this test's claimer takes them.
 */

let t: TestServer;
const accounts: { id: string; session: string }[] = [];

beforeAll(async () => {
  t = await startTestServer();
  await t.server.engine.stop();
  for (let i = 0; i < 7; i++) {
    const account = await createSandboxAccount(t.api, 'alice');
    accounts.push({ id: account.id, session: await scrape(t.api, account.id) });
  }
  // The last account (queued last) belongs to a second, small organization.
  const db = t.server.store.db;
  await db.insertInto('organizations').values({ id: 'org_small', name: 'Small', created_at: Date.now() }).execute();
  const last = accounts[accounts.length - 1]!;
  await db.updateTable('accounts').set({ org_id: 'org_small' }).where('id', '=', last.id).execute();
  await db.updateTable('sessions').set({ org_id: 'org_small' }).where('id', '=', last.session).execute();
});

afterAll(async () => {
  await t?.close();
});

function claimer(bankLimits: Map<string, number>, owner: string) {
  return makeClaimer({
    db: t.server.store.db,
    dialect: t.server.store.dialect,
    clock: Date.now,
    owner,
    leaseMs: 30_000,
    bankLimits,
  });
}

describe('claiming queued sessions', () => {
  it('gives a small organization its turn ahead of a big one that queued first, and holds a bank cap', async () => {
    // A cap of 3 on the sandbox bank: 3 of the 7 queued sessions may run.
    const first = await claimer(new Map([['sandbox', 3]]), 'wkr_a')(10);
    expect(first).toHaveLength(3);
    expect(first.every((s) => s.state === 'running' && s.lease_owner === 'wkr_a')).toBe(true);
    // The small organization's only session was queued last, yet it is among the first three.
    expect(first.map((s) => s.org_id)).toContain('org_small');
    // Another worker finds the bank full: nothing more is claimed until a login ends.
    expect(await claimer(new Map([['sandbox', 3]]), 'wkr_b')(10)).toEqual([]);
    await t.server.store.db
      .updateTable('sessions')
      .set({ state: 'succeeded', finished_at: Date.now(), lease_owner: null, lease_expires_at: null })
      .where('id', '=', first[0]!.id)
      .execute();
    const second = await claimer(new Map([['sandbox', 3]]), 'wkr_b')(10);
    expect(second).toHaveLength(1);
    // Without a cap the rest go at once, each claimed once.
    const rest = await claimer(new Map(), 'wkr_c')(10);
    expect(rest).toHaveLength(3);
    const ids = [...first, ...second, ...rest].map((s) => s.id);
    expect(new Set(ids).size).toBe(7);
    expect(ids.sort()).toEqual(accounts.map((a) => a.session).sort());
    expect(await claimer(new Map(), 'wkr_c')(10)).toEqual([]);
  });
});

describe('connector limits and kept sessions', () => {
  async function queued(n: number): Promise<string[]> {
    const ids: string[] = [];
    for (let i = 0; i < n; i++)
      ids.push((await scrape(t.api, (await createSandboxAccount(t.api, 'alice')).id)) as string);
    return ids;
  }

  it('starts one login per spacing interval to a bank with min_login_spacing_seconds', async () => {
    const ids = await queued(3);
    let now = Date.now();
    const spaced = (owner: string) =>
      makeClaimer({
        db: t.server.store.db,
        dialect: t.server.store.dialect,
        clock: () => now,
        owner,
        leaseMs: 30_000,
        bankLimits: new Map(),
        bankSpacing: new Map([['sandbox', 60_000]]),
      });
    expect(await spaced('wkr_a')(10)).toHaveLength(1);
    expect(await spaced('wkr_b')(10)).toEqual([]);
    now += 59_000;
    expect(await spaced('wkr_b')(10)).toEqual([]);
    now += 1_000;
    expect(await spaced('wkr_b')(10)).toHaveLength(1);
    now += 60_000;
    const last = await spaced('wkr_a')(10);
    expect(last.map((s) => s.id)).toHaveLength(1);
    expect(ids).toContain(last[0]!.id);
  });

  it('combines a connector’s own cap with OTPILOT_BANK_CONCURRENCY (the lower wins)', () => {
    const registry = makeConnectorRegistry([
      { ...connectorStub('a'), limits: { max_concurrent_logins: 2, min_login_spacing_seconds: 1.5 } },
      { ...connectorStub('b'), limits: { max_concurrent_logins: 5 } },
      connectorStub('c'),
    ]);
    const { bankLimits, bankSpacing } = bankLimitsOf(
      registry,
      new Map([
        ['a', 4],
        ['b', 3],
        ['d', 1],
      ]),
    );
    expect([...bankLimits].sort()).toEqual([
      ['a', 2],
      ['b', 3],
      ['d', 1],
    ]);
    expect([...bankSpacing]).toEqual([['a', 1500]]);
  });

  it('leaves an account whose open session another live worker keeps to that worker', async () => {
    const [session] = await queued(1);
    const db = t.server.store.db;
    const row = await db
      .selectFrom('sessions')
      .select('account_id')
      .where('id', '=', session!)
      .executeTakeFirstOrThrow();
    const hold = (until: number) =>
      db
        .updateTable('accounts')
        .set({ live_session_owner: 'wkr_keeper', live_session_since: Date.now(), live_session_until: until })
        .where('id', '=', row.account_id)
        .execute();
    await hold(Date.now() + 60_000);
    expect(await claimer(new Map(), 'wkr_other')(10)).toEqual([]);
    // The keeper stopped renewing its claim (a dead worker): anyone may run the account.
    await hold(Date.now() - 1);
    expect((await claimer(new Map(), 'wkr_other')(10)).map((s) => s.id)).toEqual([session]);
  });
});

function connectorStub(id: string): Connector {
  return { id, name: id, version: '1', credential_fields: [], login: () => Promise.reject(new Error('unused')) };
}
