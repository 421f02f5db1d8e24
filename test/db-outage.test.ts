import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isStorageUnavailable } from '../src/store/errors.js';
import { createSandboxAccount, eventually, scrape, sessionEnd } from './helpers/flows.js';
import { startTestServer, type TestServer, tempDir } from './helpers/server.js';
import { schemaFor, storeEnv, testDatabaseUrl, urlWithSchema } from './helpers/store.js';
import { startTcpProxy, type TcpProxy } from './helpers/tcp-proxy.js';

/*
 * The database goes away under a running process and comes back: the API answers 503 UNAVAILABLE
 * meanwhile (and queues nothing), the process reports the database down, and afterwards it serves
 * and claims work again without a restart. PostgreSQL only (the
 * outage is a cut TCP connection; vitest.config.ts runs this file in the postgres project).
 */

let proxy: TcpProxy;
let t: TestServer;

beforeAll(async () => {
  const target = new URL(testDatabaseUrl());
  proxy = await startTcpProxy(Number(target.port || 5432));
  const dataDir = tempDir();
  await storeEnv(dataDir);
  const proxied = new URL(urlWithSchema(testDatabaseUrl(), schemaFor(dataDir)));
  proxied.hostname = '127.0.0.1';
  proxied.port = String(proxy.port);
  t = await startTestServer({
    dataDir,
    env: { DATABASE_URL: proxied.toString(), OTPILOT_PG_CONNECT_TIMEOUT_MS: '1000', OTPILOT_LEASE_MS: '3000' },
  });
});

afterAll(async () => {
  proxy.restore();
  await t?.close();
  await proxy?.close();
});

describe('a database outage', () => {
  it('answers 503 UNAVAILABLE while the database is down, then recovers and claims work again without a restart', async () => {
    const account = await createSandboxAccount(t.api, 'alice');
    expect((await sessionEnd(t.api, await scrape(t.api, account.id))).state).toBe('succeeded');

    proxy.cut();
    const health = await eventually(
      () => t.api.get('/health', null),
      (r) => r.body.database === 'down',
      10_000,
    );
    // The API process itself stays alive (liveness) and says what is wrong.
    expect(health.status).toBe(200);
    for (const reply of [
      await t.api.get('/v1/accounts'),
      await t.api.post(`/v1/accounts/${account.id}/scrape`),
      await t.api.get('/ready', null),
    ]) {
      expect(reply.status).toBe(503);
      expect(reply.body.error.code).toBe('UNAVAILABLE');
    }
    const metrics = await (await fetch(`${t.url}/metrics`)).text();
    expect(metrics).toMatch(/^otpilot_db_up 0$/m);

    proxy.restore();
    await eventually(
      () => t.api.get('/v1/accounts'),
      (r) => r.status === 200,
      10_000,
    );
    expect((await t.api.get('/health', null)).body.database).toBe('up');
    // The engine claims again: a new scrape runs to its end.
    expect((await sessionEnd(t.api, await scrape(t.api, account.id), 20_000)).state).toBe('succeeded');
  }, 60_000);
});

describe('a PostgreSQL server with no connection left for us', () => {
  it('reads as the database being unavailable (503), not as our bug (500)', async () => {
    const admin = new pg.Client({ connectionString: testDatabaseUrl() });
    await admin.connect();
    // A role allowed no connection gets the same SQLSTATE (53300) as a server out of connections.
    const role = `full_${Math.random().toString(36).slice(2, 10)}`;
    await admin.query(`CREATE ROLE ${role} LOGIN CONNECTION LIMIT 0`);
    try {
      const url = new URL(testDatabaseUrl());
      url.username = role;
      const refused = new pg.Client({ connectionString: url.toString() });
      const error = await refused.connect().then(
        () => null,
        (err: unknown) => err,
      );
      expect((error as { code?: string } | null)?.code).toBe('53300');
      expect(isStorageUnavailable(error)).toBe(true);
    } finally {
      await admin.query(`DROP ROLE ${role}`);
      await admin.end();
    }
  });
});
