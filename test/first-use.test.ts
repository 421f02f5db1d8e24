import { afterAll, beforeAll, describe, it } from 'vitest';
import { connectSessionFirstUse, gatedConnectors, heldSmsFirstUse, resultFirstUse } from './helpers/first-use.js';
import { startTestServer, type TestServer } from './helpers/server.js';

/*
 * Listeners skip their query while nothing of their feature exists (src/events/presence.ts): each
 * feature, used for the first time after logins already ran, still works. With several processes on
 * PostgreSQL: first-use-processes.test.ts.
 */

const gated = gatedConnectors();
let t: TestServer;

beforeAll(async () => {
  // A rare interval pass: only the wake-ups can settle a result within a test's time.
  t = await startTestServer({ connectors: gated.connectors, env: { OTPILOT_POLL_MS: '60000' } });
});
afterAll(async () => {
  await t?.close();
});

describe('an optional feature used first after logins ran', () => {
  it('takes a held SMS when its request opens', async () => {
    await heldSmsFirstUse({ work: t, api: t.api }, gated);
  });

  it('completes a connect session whose login succeeds while nobody asks', async () => {
    await connectSessionFirstUse({ work: t, api: t.api });
  });

  it('settles a data result in the background when its login succeeds', async () => {
    await resultFirstUse({ work: t, api: t.api });
  });
});
