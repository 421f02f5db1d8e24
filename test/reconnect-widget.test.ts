/// <reference lib="dom" />
// (The callbacks given to page.evaluate run in the browser.)
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium, newContext } from './helpers/browser.js';
import { createSandboxAccount, latestCode } from './helpers/flows.js';
import { type Receiver, startReceiver } from './helpers/receiver.js';
import { startTestServer, type TestServer } from './helpers/server.js';
import { startIntegratorPage, widgetCall } from './helpers/widget.js';

/**
 * The reconnect widget in Chromium, from an integrator's page on another origin and from the demo
 * page, against the sandbox's corporate policy (a code only when the last login is older than
 * 5 minutes). Both clocks (otpilot's and the bank's) run on real time plus a shift the tests move.
 */

let t: TestServer;
let browser: Browser;
let receiver: Receiver;
let shift = 0;
const clock = () => Date.now() + shift;
const MINUTE = 60_000;
const DAY = 86_400_000;

let integrator: { origin: string; close(): void };
let integratorOrigin: string;
let appToken: string;

beforeAll(async () => {
  t = await startTestServer({ clock, sandboxBank: { now: clock } });
  receiver = await startReceiver();
  const endpoint = await t.api.post('/v1/webhooks', {
    url: receiver.url,
    events: ['account_reconnected', 'results_ready'],
  });
  expect(endpoint.status).toBe(201);
  integrator = await startIntegratorPage(t.url);
  integratorOrigin = integrator.origin;
  const token = await t.api.post('/v1/app-tokens', { name: 'Acme Books', allowed_origins: [integratorOrigin] });
  expect(token.status).toBe(201);
  appToken = token.body.token;
  browser = await launchChromium();
});
afterAll(async () => {
  await browser?.close();
  integrator?.close();
  await receiver?.close();
  await t?.close();
});

const widget = (method: string, path: string, options?: Parameters<typeof widgetCall>[4]) =>
  widgetCall(t.api, appToken, method, path, options);

describe('reconnect in Chromium (corporate bank policy)', { timeout: 90_000 }, () => {
  it('data call → RECONNECT_REQUIRED → widget in Chromium → code → account_reconnected, results_ready → results', async () => {
    const account = await createSandboxAccount(t.api, 'corporate');
    // Nothing stored yet: a live login, and the corporate bank wants a code.
    const call = await t.api.get(`/v1/accounts/${account.id}/balances`);
    expect(call.status).toBe(200);
    expect(call.body.status).toBe('RECONNECT_REQUIRED');
    expect(call.body.payload).toEqual({ reconnect_id: expect.stringMatching(/^rcn_/), type: 'reconnect' });
    const { reconnect_id } = call.body.payload;
    const resultsId = call.body.results_id;
    expect((await t.api.get(`/v1/results/${resultsId}`)).body.status).toBe('RECONNECT_REQUIRED');

    const context = await newContext(browser);
    const page = await context.newPage();
    await page.goto(`${integratorOrigin}/?app_token=${appToken}&reconnect_id=${reconnect_id}`);
    await page.getByRole('button', { name: 'Reconnect bank' }).click();
    const dialog = page.getByRole('dialog', { name: 'Reconnect Sandbox Bank' });
    const input = dialog.getByLabel('Verification code');
    await input.waitFor();
    // Built from the descriptor: a numeric keypad and the code's length.
    expect(await input.getAttribute('inputmode')).toBe('numeric');
    expect(await input.getAttribute('maxlength')).toBe('6');
    await expect.poll(() => input.evaluate((el) => (el.getRootNode() as ShadowRoot).activeElement === el)).toBe(true);
    await input.fill(await latestCode(t.api, account.username));
    await input.press('Enter');
    await dialog.getByText('Your bank is connected again.').waitFor();
    await page.getByText(`success ${reconnect_id}`).waitFor();
    await dialog.getByRole('button', { name: 'Done' }).click();
    await page.getByText('closed').waitFor();
    expect(await page.getByRole('dialog').count()).toBe(0);
    await context.close();

    // account_reconnected, then results_ready, each once.
    const mine = () => receiver.received.filter((r) => r.json.account_id === account.id);
    await expect.poll(() => mine().length, { timeout: 15_000 }).toBe(2);
    const [reconnected, ready] = mine();
    expect(reconnected!.json).toMatchObject({
      type: 'account_reconnected',
      account_id: account.id,
      data: { id: account.id, reconnect_id },
    });
    expect(ready!.json).toMatchObject({ type: 'results_ready', data: { id: resultsId } });
    const results = await t.api.get(`/v1/results/${resultsId}`);
    expect(results.body).toMatchObject({ status: 'OK', results_id: resultsId });
    expect(results.body.payload.balances.length).toBeGreaterThan(0);
    const audit = await t.server.store.db
      .selectFrom('audit_log')
      .selectAll()
      .where('account_id', '=', account.id)
      .where('action', '=', 'otp.submit')
      .execute();
    expect(audit.map((a) => [a.actor_type, JSON.parse(a.details ?? '{}').via])).toEqual([['app_token', 'widget']]);

    // Within five minutes the corporate bank lets a live call through without a code…
    const fresh = await t.api.get(`/v1/accounts/${account.id}/balances?refresh=true`);
    expect(fresh.body.status).toBe('OK');
    // …and after that it forces a reconnect again.
    shift += 6 * MINUTE;
    const later = await t.api.get(`/v1/accounts/${account.id}/transactions?refresh=true`);
    expect(later.body.status).toBe('RECONNECT_REQUIRED');
    expect(later.body.payload.reconnect_id).not.toBe(reconnect_id);
    await t.api.post(`/v1/sessions/${(await t.api.get(`/v1/accounts/${account.id}/status`)).body.session.id}/cancel`);
  });

  it('answers GONE for a reconnect and results older than 30 days', async () => {
    const account = await createSandboxAccount(t.api, 'corporate');
    const call = await t.api.get(`/v1/accounts/${account.id}/balances?refresh=true`);
    expect(call.body.status).toBe('RECONNECT_REQUIRED');
    const id = call.body.payload.reconnect_id;
    await t.api.post(`/v1/sessions/${(await t.api.get(`/v1/accounts/${account.id}/status`)).body.session.id}/cancel`);
    shift += 31 * DAY;
    const gone = await widget('GET', id);
    expect(gone.status).toBe(410);
    expect(gone.body.error.code).toBe('GONE');
    expect((await widget('POST', `${id}/start`)).status).toBe(410);
    expect((await t.api.get(`/v1/results/${call.body.results_id}`)).status).toBe(410);

    // The demo page (same origin) runs the widget: it says the link expired, calls onError, and
    // Escape closes it with onClose.
    const context = await newContext(browser);
    const page = await context.newPage();
    const demo = await page.goto(`${t.url}/widget-demo?app_token=${appToken}&reconnect_id=${id}`);
    expect(demo?.headers()['content-security-policy']).toMatch(/script-src 'self' 'nonce-/);
    await page.getByRole('button', { name: 'Reconnect' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByText('This reconnect link has expired. Ask for a new one.').waitFor();
    const log = page.locator('#log');
    await expect.poll(() => log.textContent()).toMatch(/onError \{"code":"GONE"/);
    await page.keyboard.press('Escape');
    await expect.poll(() => log.textContent()).toMatch(/onClose/);
    expect(await page.getByRole('dialog').count()).toBe(0);
    await context.close();
  });
});
