import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { EventEnvelope } from '../src/core/events.js';
import { makePostgresBus } from '../src/events/pg-bus.js';
import { createSandboxAccount, eventually, listedMovements, scrape, sessionEnd } from './helpers/flows.js';
import { startTestServer, type TestServer } from './helpers/server.js';

/*
 * A movement event read by another process's PostgreSQL bus carries the whole movement, loaded from
 * its row. PostgreSQL only (vitest.config.ts leaves this file out of the SQLite project).
 */

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

async function server(): Promise<TestServer> {
  const t = await startTestServer();
  cleanup.push(() => t.close());
  return t;
}

describe('compact events across processes', () => {
  it("another process's bus reads the movement for the envelope it republishes", async () => {
    const t = await server();
    const postgres = t.server.store.postgres!;
    const other = makePostgresBus({
      db: t.server.store.db,
      clientConfig: postgres.clientConfig,
      schema: postgres.schema,
      log: pino({ level: 'silent' }),
    });
    await other.start();
    cleanup.push(() => other.stop());
    const received: EventEnvelope[] = [];
    other.subscribe('event', (payload) => received.push(payload as EventEnvelope));

    const account = await createSandboxAccount(t.api, 'alice');
    const session = await sessionEnd(t.api, await scrape(t.api, account.id));
    const movements = await listedMovements(t.api, account.id);
    const mine = () => received.filter((e) => e.type === 'bank_movement' && e.account_id === account.id);
    await eventually(
      async () => mine().length,
      (n) => n === session.movements_new,
      30_000,
    );
    for (const envelope of mine()) expect(envelope.data).toEqual(movements.get((envelope.data as { id: string }).id));
  }, 60_000);
});
