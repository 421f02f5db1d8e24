import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSandboxAccount, eventually, latestCode, pendingRequest, scrape, sessionEnd } from './helpers/flows.js';
import { type Receiver, startReceiver } from './helpers/receiver.js';
import { startTestServer, type TestServer } from './helpers/server.js';

let t: TestServer;
let failing: Receiver;

beforeAll(async () => {
  t = await startTestServer();
  failing = await startReceiver();
  failing.respond = () => 500;
});

afterAll(async () => {
  await failing?.close();
  await t?.close();
});

async function scrapeMetrics(): Promise<string> {
  const response = await fetch(`${t.url}/metrics`);
  expect(response.status).toBe(200);
  return response.text();
}

/** The value of one series (`name{labels}`), or null when it is absent. */
function value(text: string, series: string): number | null {
  for (const line of text.split('\n')) if (line.startsWith(`${series} `)) return Number(line.slice(series.length + 1));
  return null;
}

describe('/metrics from the store', () => {
  it('reports pending requests, code hand-off time and sources, login outcomes per bank, and webhook failures', async () => {
    const sessionId = await scrape(t.api, t.tourAccountId);
    await pendingRequest(t.api, t.tourAccountId);
    expect(value(await scrapeMetrics(), 'otpilot_assistance_pending{bank="sandbox",type="otp"}')).toBe(1);

    const code = await latestCode(t.api, 'otp');
    expect((await t.api.post(`/v1/accounts/${t.tourAccountId}/otp`, { code })).status).toBe(202);
    expect((await sessionEnd(t.api, sessionId)).state).toBe('succeeded');
    const locked = await createSandboxAccount(t.api, 'locked');
    const failed = await sessionEnd(t.api, await scrape(t.api, locked.id));
    expect(failed.state).toBe('failed');

    const hook = await t.api.post('/v1/webhooks', { url: failing.url });
    const spare = await t.api.post('/v1/webhooks', { url: failing.url, events: ['trust_expiring'] });
    expect((await t.api.patch(`/v1/webhooks/${spare.body.id}`, { enabled: false })).status).toBe(200);
    expect((await t.api.post(`/v1/webhooks/${hook.body.id}/test`)).status).toBe(202);
    await failing.waitFor(1);

    const text = await eventually(
      scrapeMetrics,
      (m) => value(m, 'otpilot_webhook_deliveries_failing{status="failed"}') !== null,
    );
    expect(value(text, 'otpilot_assistance_pending{bank="sandbox",type="otp"}')).toBeNull();
    expect(value(text, 'otpilot_codes_last_hour{bank="sandbox",source="api"}')).toBe(1);
    const slowest = value(text, 'otpilot_code_handoff_seconds{bank="sandbox",quantile="1"}');
    expect(slowest).toBeGreaterThan(0);
    expect(value(text, 'otpilot_code_handoff_seconds{bank="sandbox",quantile="0.5"}')).toBeLessThanOrEqual(slowest!);
    expect(value(text, 'otpilot_logins_last_hour{bank="sandbox",outcome="succeeded"}')).toBe(1);
    expect(value(text, `otpilot_logins_last_hour{bank="sandbox",outcome="${failed.failure_category}"}`)).toBe(1);
    expect(value(text, 'otpilot_webhook_deliveries_failing{status="failed"}')).toBeGreaterThanOrEqual(1);
    expect(value(text, 'otpilot_webhook_endpoints{state="disabled"}')).toBe(1);
    expect(text).toContain('# HELP otpilot_code_handoff_seconds');
  });
});
