import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';
import { CHROMIUM_ARGS } from '../../src/browser/chromium.js';

/** Debian's Chromium (`apt-get install -y chromium`; .ci/run installs it). */
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** Without the background-networking flags Chromium keeps dialling Google, which this closed network refuses. */
export async function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [...CHROMIUM_ARGS],
  });
}

export const DESKTOP = { width: 1280, height: 820 };
export const PHONE = { width: 375, height: 740 };

/** A fresh browser profile (own cookies) at a viewport size. */
export async function newContext(
  browser: Browser,
  viewport = DESKTOP,
  storageState?: Awaited<ReturnType<BrowserContext['storageState']>>,
): Promise<BrowserContext> {
  const context = await browser.newContext({
    ...(storageState ? { storageState } : {}),
    viewport,
    deviceScaleFactor: 1,
    isMobile: viewport.width < 600,
    hasTouch: viewport.width < 600,
  });
  // Generous: a loaded 2-core CI machine can take seconds to start a renderer.
  context.setDefaultTimeout(30_000);
  // A script error in the app is a test failure's best clue; print it with the test's output.
  context.on('weberror', (error) => console.error('dashboard error:', error.error().message));
  return context;
}

/** Signs in through the real sign-in form. */
export async function signInPage(page: Page, baseUrl: string, email: string, password: string): Promise<void> {
  await page.goto(`${baseUrl}/app/`);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('navigation', { name: 'Main' }).waitFor();
}

/**
 * Where screenshots go: test-results/screenshots (ignored) during `npm test`; `npm run screenshots`
 * points SCREENSHOT_DIR at docs/screenshots to refresh the documentation's pictures.
 */
export const SCREENSHOTS = process.env.SCREENSHOT_DIR
  ? resolve(process.env.SCREENSHOT_DIR)
  : join(import.meta.dirname, '..', '..', 'test-results', 'screenshots');

/** Saves <SCREENSHOTS>/<name>.png. */
export async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: false, animations: 'disabled' });
}

/** How far the page scrolls sideways past the viewport, px (0: nothing is cut off or needs a sideways scroll). */
export async function horizontalOverflow(page: Page): Promise<number> {
  return page.evaluate<number>('document.documentElement.scrollWidth - document.documentElement.clientWidth');
}

/** The elements that stick out past the viewport's right edge (for a failing overflow check's message). */
export async function overflowingElements(page: Page): Promise<string[]> {
  return page.evaluate<string[]>(`[...document.querySelectorAll('body *')]
    .filter((el) => el.getBoundingClientRect().right > document.documentElement.clientWidth + 0.5)
    .slice(0, 8)
    .map((el) => el.tagName.toLowerCase() + (el.className && typeof el.className === 'string' ? '.' + el.className.trim().replace(/\\s+/g, '.') : '') + ' ' + Math.round(el.getBoundingClientRect().right))`);
}
