import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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
