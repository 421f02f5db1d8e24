/// <reference lib="dom" />
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { DESKTOP, launchChromium, newContext, PHONE, screenshot, signInPage } from './helpers/browser.js';
import { createSandboxAccount, pendingRequest, scrape, sessionEnd } from './helpers/flows.js';
import { startTestServer, type TestServer } from './helpers/server.js';

/**
 * `npm run screenshots`: the pictures in docs/screenshots, taken from a real server in real
 * Chromium at 1280 px (`-desktop`) and 375 px (`-mobile`). Not part of `npm test`, which writes
 * nothing tracked.
 */

let t: TestServer;
let browser: Browser;
const ADMIN = 'admin@otpilot.local';

beforeAll(async () => {
  t = await startTestServer();
  browser = await launchChromium();
});
afterAll(async () => {
  await browser?.close();
  await t?.close();
});

async function settled(page: Page): Promise<void> {
  await page.getByRole('navigation', { name: 'Main' }).waitFor();
  await page.getByText('Loading…').first().waitFor({ state: 'detached' });
}

describe('documentation screenshots', { timeout: 180_000 }, () => {
  it('takes every main page, the account page and the code prompt at 1280 and 375 px', async () => {
    const endpoint = await t.api.post('/v1/webhooks', { url: `${t.url}/health`, description: 'Accounting system' });
    // An account with history to show: two successful logins with movements.
    const busy = await createSandboxAccount(t.api, 'alice');
    for (let i = 0; i < 2; i++) await sessionEnd(t.api, await scrape(t.api, busy.id));
    const waiting = await createSandboxAccount(t.api, 'otp');

    for (const [size, viewport] of [
      ['desktop', DESKTOP],
      ['mobile', PHONE],
    ] as const) {
      const context = await newContext(browser, viewport);
      const page = await context.newPage();
      await page.goto(`${t.url}/app/`);
      await page.getByRole('button', { name: 'Sign in' }).waitFor();
      await screenshot(page, `sign-in-${size}`);
      await signInPage(page, t.url, ADMIN, t.server.bootstrap!.adminPassword);
      for (const [path, name] of [
        ['/app/', 'accounts'],
        ['/app/keys', 'api-keys'],
        ['/app/webhooks', 'webhooks'],
        [`/app/webhooks/${endpoint.body.id}`, 'webhook-deliveries'],
        ['/app/users', 'users'],
        ['/app/audit', 'audit'],
        ['/app/settings', 'settings'],
        [`/app/accounts/${busy.id}`, 'account'],
      ] as const) {
        await page.goto(`${t.url}${path}`);
        await settled(page);
        await screenshot(page, `${name}-${size}`);
      }
      // The prompt over the accounts list: the list's columns stay readable beside or above it.
      await page.goto(`${t.url}/app/`);
      await settled(page);
      const sessionId = await scrape(t.api, waiting.id);
      await pendingRequest(t.api, waiting.id);
      await page
        .getByRole('region', { name: /Code requests|Solicitudes de código/ })
        .getByRole('textbox')
        .waitFor();
      await screenshot(page, `prompt-${size}`);
      await t.api.post(`/v1/sessions/${sessionId}/cancel`);
      await sessionEnd(t.api, sessionId);
      await context.close();
    }
  });
});
