import { readFileSync } from 'node:fs';
import type { Connector } from '../connectors/sdk.js';
import type { Db } from '../store/db.js';
import { type ChromiumPool, makeChromiumPool } from './chromium.js';
import { makeBrowserConnector } from './connector.js';
import { makeRunRecorder } from './runs.js';
import type { RunLimits } from './script-run.js';
import { makeScriptCatalog, type ScriptCatalog } from './scripts.js';

/** The browser runtime's settings (docs/configuration.md "Browser scripts"). */
export interface BrowserSettings {
  /** CHROMIUM_PATH [/usr/bin/chromium]. */
  chromiumPath: string;
  /** OTPILOT_BROWSER_ISOLATION [context]: `process` starts one Chromium per login. */
  isolation: 'context' | 'process';
  /** OTPILOT_BROWSER_CONCURRENCY [4]: browser logins at once in this process. */
  concurrency: number;
  /** OTPILOT_BROWSER_EVIDENCE_DAYS [14]: failure evidence kept this long (0: forever). */
  evidenceDays: number;
}

/** Per-login limits; documented in docs/browser-scripts.md "Limits". */
export const RUN_LIMITS: RunLimits = { actionMs: 30_000, navigationMs: 45_000, maxPages: 5, workerHeapMb: 128 };
const RENDERER_HEAP_MB = 256;
const IDLE_MS = 60_000;

/** The bank id of the sandbox bank's website and its reference script (bank-scripts/sandbox-web.js). */
export const SANDBOX_WEB_BANK = 'sandbox-web';
const SANDBOX_WEB_SCRIPT = new URL('../../bank-scripts/sandbox-web.js', import.meta.url);

export interface BrowserRuntime {
  scripts: ScriptCatalog;
  pool: ChromiumPool;
  /** The built-in connector of the sandbox bank's website; `baseUrl` ends with `/sandbox-bank/web/`. */
  sandboxWebConnector(baseUrl: () => string): Connector;
  /** Makes each built-in browser bank's reference script active when the bank has no script yet. */
  seed(connectors: Connector[]): Promise<void>;
  close(): Promise<void>;
}

export function makeBrowserRuntime(deps: { db: Db; clock: () => number; settings: BrowserSettings }): BrowserRuntime {
  const { settings } = deps;
  const pool = makeChromiumPool({
    executablePath: settings.chromiumPath,
    isolation: settings.isolation,
    maxLogins: settings.concurrency,
    rendererHeapMb: RENDERER_HEAP_MB,
    idleMs: IDLE_MS,
  });
  const scripts = makeScriptCatalog({ db: deps.db, clock: deps.clock });
  const runs = makeRunRecorder({ db: deps.db, clock: deps.clock, retentionDays: settings.evidenceDays });
  return {
    scripts,
    pool,
    sandboxWebConnector: (baseUrl) =>
      makeBrowserConnector({
        id: SANDBOX_WEB_BANK,
        name: 'Sandbox Bank (website, browser script)',
        credentialFields: [
          { name: 'username', label: 'Username', type: 'text', required: true },
          { name: 'password', label: 'Password', type: 'password', required: true },
        ],
        baseUrl,
        scripts,
        runs,
        pool,
        limits: RUN_LIMITS,
      }),
    async seed(connectors) {
      if (connectors.some((c) => c.id === SANDBOX_WEB_BANK)) {
        await scripts.seed(SANDBOX_WEB_BANK, readFileSync(SANDBOX_WEB_SCRIPT, 'utf8'));
      }
    },
    close: () => pool.close(),
  };
}
