import { afterEach, describe, expect, it } from 'vitest';
import { auditOf, createSandboxAccount, scrape, sessionEnd } from './helpers/flows.js';
import { startTestServer, type TestServer } from './helpers/server.js';

const SECRET = 'JBSWY3DPEHPK3PXP'; // the sandbox bank's `totp` user
let t: TestServer | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

async function requestsOf(accountId: string) {
  return (await t!.api.get(`/v1/assistance-requests?account_id=${accountId}`)).body.data;
}

describe('TOTP automation', () => {
  it('logs in with an authenticator code otpilot computes itself', async () => {
    t = await startTestServer();
    const account = await createSandboxAccount(t.api, 'totp', { totp_secret: SECRET });
    expect((await t.api.get(`/v1/accounts/${account.id}/config`)).body.totp_secret).toBe('********');
    const session = await sessionEnd(t.api, await scrape(t.api, account.id));
    expect(session.state).toBe('succeeded');
    const [request] = await requestsOf(account.id);
    expect(request).toMatchObject({
      state: 'fulfilled',
      attempts: 0,
      descriptor: { channel: 'authenticator', length: 6 },
      resolution: { via: 'totp', reason: 'accepted' },
    });
    const audit = await auditOf(t.server.store.db, account.id, 'otp.submit');
    expect(audit).toHaveLength(1);
    expect(audit[0]).toMatchObject({ actor_type: 'system', outcome: 'submitted' });
  });

  it('waits for the next time step when the current one is about to end', async () => {
    // Both clocks (otpilot's and the bank's) are moved forward, just before the login starts, to
    // 1.5 s before the end of a 30 s step (however long the server took to start).
    let offset = 0;
    const clock = () => Date.now() + offset;
    t = await startTestServer({ clock, sandboxBank: { now: clock } });
    const account = await createSandboxAccount(t.api, 'totp', {
      totp_secret: `otpauth://totp/Sandbox:user?secret=${SECRET}&digits=6&period=30`,
    });
    const now = clock();
    offset += (30_000 - (now % 30_000) - 1_500 + 30_000) % 30_000;
    const session = await sessionEnd(t.api, await scrape(t.api, account.id));
    expect(session.state).toBe('succeeded');
    const [request] = await requestsOf(account.id);
    const opened = Date.parse(request.created_at);
    const resolved = Date.parse(request.resolved_at);
    expect(Math.floor(resolved / 30_000)).toBe(Math.floor(opened / 30_000) + 1);
    expect(resolved % 30_000).toBeLessThan(5_000);
  });

  it('refuses a secret that is not base32 or an otpauth URI', async () => {
    t = await startTestServer();
    const account = await createSandboxAccount(t.api, 'totp');
    for (const totp_secret of ['not a secret!', 'ABC', 'otpauth://hotp/x?secret=JBSWY3DPEHPK3PXP&counter=1']) {
      const reply = await t.api.put(`/v1/accounts/${account.id}/config`, { totp_secret });
      expect(reply.status, totp_secret).toBe(400);
      expect(reply.body.error.details[0].path).toBe('/totp_secret');
    }
  });

  it('lets a simple login take a computed code, and fails it when a person would be needed', async () => {
    t = await startTestServer();
    const automatic = await createSandboxAccount(t.api, 'totp', { login_mode: 'simple', totp_secret: SECRET });
    expect((await sessionEnd(t.api, await scrape(t.api, automatic.id))).state).toBe('succeeded');
    const manual = await createSandboxAccount(t.api, 'otp', { login_mode: 'simple' });
    expect(await sessionEnd(t.api, await scrape(t.api, manual.id))).toMatchObject({
      state: 'failed',
      failure_category: 'assistance_unavailable',
    });
  });
});
