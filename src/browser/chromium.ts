import type { BrowserServer } from 'playwright-core';

/** How the runtime starts Chromium (docs/configuration.md, `OTPILOT_BROWSER_*`). */
export interface ChromiumOptions {
  /** Debian's Chromium [CHROMIUM_PATH or /usr/bin/chromium]; nothing is ever downloaded. */
  executablePath: string;
  /** `context`: logins share one Chromium, each in its own context; `process`: one Chromium per login. */
  isolation: 'context' | 'process';
  /** Logins in a browser at once in this process; more wait for a slot [OTPILOT_BROWSER_CONCURRENCY]. */
  maxLogins: number;
  /** V8 heap cap of each renderer, MB (`--js-flags=--max-old-space-size`). */
  rendererHeapMb: number;
  /** A shared Chromium with no login for this long is closed, ms. */
  idleMs: number;
}

/** One login's use of a browser: where the worker connects, and how it gives the browser back. */
export interface BrowserLease {
  wsEndpoint: string;
  release(): Promise<void>;
}

export interface ChromiumPool {
  /** Waits for a slot (or the signal), starting Chromium when none runs. */
  acquire(signal: AbortSignal): Promise<BrowserLease>;
  /** Logins holding a browser now. */
  active(): number;
  close(): Promise<void>;
}

/** Chromium's flags wherever otpilot starts it: without the background-networking ones it keeps dialling Google. */
export const CHROMIUM_ARGS: readonly string[] = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

async function launch(options: ChromiumOptions): Promise<BrowserServer> {
  // Loaded on the first browser login: most processes never start a browser, and the import is slow.
  const { chromium } = await import('playwright-core');
  return chromium.launchServer({
    executablePath: options.executablePath,
    args: [...CHROMIUM_ARGS, '--disable-dev-shm-usage', `--js-flags=--max-old-space-size=${options.rendererHeapMb}`],
    // Loopback only.
    host: '127.0.0.1',
  });
}

export function makeChromiumPool(options: ChromiumOptions): ChromiumPool {
  let shared: Promise<BrowserServer> | null = null;
  let users = 0;
  let idleTimer: NodeJS.Timeout | null = null;
  const waiters: Array<() => void> = [];
  let closed = false;

  const closeShared = async () => {
    const server = shared;
    shared = null;
    if (server) await (await server.catch(() => null))?.close().catch(() => {});
  };

  const slot = async (signal: AbortSignal) => {
    while (users >= options.maxLogins) {
      signal.throwIfAborted();
      await new Promise<void>((resolve, reject) => {
        const onAbort = () => {
          const at = waiters.indexOf(wake);
          if (at >= 0) waiters.splice(at, 1);
          reject(signal.reason);
        };
        const wake = () => {
          signal.removeEventListener('abort', onAbort);
          resolve();
        };
        waiters.push(wake);
        signal.addEventListener('abort', onAbort, { once: true });
      });
    }
    users++;
  };

  const free = () => {
    users--;
    waiters.shift()?.();
  };

  /** A slot on `server`, given back once however often `release` is called. */
  const lease = (server: BrowserServer, after: () => Promise<unknown>): BrowserLease => {
    let released = false;
    return {
      wsEndpoint: server.wsEndpoint(),
      async release() {
        if (released) return;
        released = true;
        free();
        await after();
      },
    };
  };

  return {
    async acquire(signal) {
      if (closed) throw new Error('the browser runtime is closed');
      await slot(signal);
      try {
        if (options.isolation === 'process') {
          const own = await launch(options);
          return lease(own, () => own.close().catch(() => {}));
        }
        if (idleTimer) clearTimeout(idleTimer);
        idleTimer = null;
        shared ??= launch(options);
        const server = await shared.catch((error: unknown) => {
          shared = null;
          throw error;
        });
        return lease(server, async () => {
          if (users === 0 && !closed) {
            idleTimer = setTimeout(() => void closeShared(), options.idleMs);
            idleTimer.unref();
          }
        });
      } catch (error) {
        free();
        throw error;
      }
    },
    active: () => users,
    async close() {
      closed = true;
      if (idleTimer) clearTimeout(idleTimer);
      await closeShared();
    },
  };
}
