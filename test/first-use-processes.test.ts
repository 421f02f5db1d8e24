import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { startServer } from '../src/server.js';
import type { RunningServer } from '../src/server-types.js';
import { type Api, makeApi } from './helpers/api.js';
import { connectSessionFirstUse, gatedConnectors, heldSmsFirstUse, resultFirstUse } from './helpers/first-use.js';
import { startTestServer, TEST_ENV, type TestServer, tempDir } from './helpers/server.js';
import { storeEnv } from './helpers/store.js';

/*
 * As first-use.test.ts, with the feature used in an API-only server and the logins (and the
 * listeners) in another, on one PostgreSQL store: each server keeps its own belief that nothing of a
 * feature exists, and learns of the other's writes over the bus. PostgreSQL only (vitest.config.ts).
 */

const gated = gatedConnectors();
let work: TestServer;
let apiServer: RunningServer;
let api: Api;
const apiDir = tempDir();

beforeAll(async () => {
  // A rare interval pass: only the wake-ups can settle a result within a test's time.
  work = await startTestServer({ connectors: gated.connectors, env: { OTPILOT_POLL_MS: '60000' } });
  const loaded = loadConfig({
    ...TEST_ENV,
    OTPILOT_DATA_DIR: apiDir,
    ...(await storeEnv(work.dataDir)),
    OTPILOT_SANDBOX_URL: `${work.url}/sandbox-bank/`,
  });
  if (!loaded.ok) throw new Error(loaded.errors.join('; '));
  apiServer = await startServer({ config: loaded.config, role: 'api', printBootstrap: () => {} });
  api = makeApi(apiServer.url, work.key);
});
afterAll(async () => {
  await apiServer?.close();
  await work?.close();
  rmSync(apiDir, { recursive: true, force: true });
});

describe('an optional feature used first in another process after logins ran', () => {
  it('takes a held SMS when its request opens', async () => {
    await heldSmsFirstUse({ work, api }, gated);
  });

  it('completes a connect session whose login succeeds while nobody asks', async () => {
    await connectSessionFirstUse({ work, api });
  });

  it('settles a data result in the background when its login succeeds', async () => {
    await resultFirstUse({ work, api });
  });
});
