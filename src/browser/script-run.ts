import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import type { ApprovalRequest, CodeRequest, CodeVerdict, LoginContext } from '../connectors/sdk.js';
import type { ChromiumPool } from './chromium.js';
import { HOST_SOURCE } from './host-source.js';
import type { Redactor } from './redact.js';
import { makeRpc, type Rpc } from './rpc.js';

/** Limits of one script run (docs/browser-scripts.md "Limits"). */
export interface RunLimits {
  /** Default timeout of one page action (click, fill, wait), ms. */
  actionMs: number;
  /** Default timeout of one navigation, ms. */
  navigationMs: number;
  /** Pages (tabs, pop-ups) a login may open in all. */
  maxPages: number;
  /** V8 heap of the script's worker thread, MB. */
  workerHeapMb: number;
}

/** A Playwright storage state (cookies and local storage) as JSON. */
export type StorageState = {
  cookies?: Array<{ name?: unknown; value?: unknown; expires?: unknown }>;
  origins?: unknown[];
};

export interface ScriptRun {
  /** Runs the script's `login`; resolves with the browser's storage state after it. */
  login(): Promise<StorageState>;
  /** Runs one of the script's data functions. */
  data(fn: 'bankAccounts' | 'balances' | 'identity' | 'movements' | 'keepAlive', args?: unknown[]): Promise<unknown>;
  /** Ends the run: disconnects from the browser, stops the worker, frees the slot; returns the last storage state. */
  close(): Promise<StorageState | null>;
  /** The engine's own error (an expired request, a cancelled session) that ended a code or approval wait. */
  engineError(): unknown;
  /** The cookies that carry the bank's trust in this device, as the script names them (`trustCookies`). */
  trustCookies: readonly string[];
}

const PLAYWRIGHT = createRequire(import.meta.url).resolve('playwright-core');

/**
 * Starts one login's script: a worker thread (its own heap, no environment, nothing of this process
 * but the messages it is sent) that connects to the pool's Chromium and opens a fresh context with
 * the account's storage state. The login context's code and approval waits run here, in the engine.
 */
export async function startScriptRun(opts: {
  pool: ChromiumPool;
  limits: RunLimits;
  source: string;
  baseUrl: string;
  storageState: StorageState | null;
  ctx: LoginContext;
  redactor: Redactor;
}): Promise<ScriptRun> {
  const { ctx, redactor } = opts;
  const lease = await opts.pool.acquire(ctx.signal);
  const worker = new Worker(HOST_SOURCE, {
    eval: true,
    workerData: { playwright: PLAYWRIGHT },
    env: {},
    resourceLimits: { maxOldGenerationSizeMb: opts.limits.workerHeapMb },
    stdout: true,
    stderr: true,
  });
  // A script's own console output is dropped: it may print what it typed.
  worker.stdout.resume();
  worker.stderr.resume();
  let engineError: unknown = null;
  let ended = false;
  let rpc: Rpc | null = null;
  const end = async () => {
    if (ended) return;
    ended = true;
    ctx.signal.removeEventListener('abort', onAbort);
    rpc?.failAll(new Error('the script run ended'));
    await worker.terminate().catch(() => {});
    await lease.release();
  };
  // A cancelled or timed-out session closes the browser at once, whatever the script is doing.
  const onAbort = () => void end();
  ctx.signal.addEventListener('abort', onAbort, { once: true });
  worker.on('error', (error) => rpc?.failAll(error));
  // A worker that died (its heap limit, a crash) fails what waits on it and gives its slot back.
  worker.on('exit', () => {
    rpc?.failAll(new Error('the script worker stopped (memory limit or crash)'));
    void end();
  });
  /** A request to the worker; refused at once when the run has ended (nothing would answer it). */
  const ask = (type: string, payload?: unknown) =>
    ended ? Promise.reject(new Error('the script run ended')) : (rpc as Rpc).request(type, payload);
  const invoke = (callback: unknown, args: unknown[]) => ask('invoke', { callback, args });
  rpc = makeRpc(
    worker,
    {
      requestCode: async (payload) => {
        const { request, tryCode, resend } = payload as {
          request: CodeRequest;
          tryCode: number;
          resend: number | null;
        };
        try {
          return await ctx.requestCode(
            request,
            async (code) => {
              redactor.add(code);
              return (await invoke(tryCode, [code])) as CodeVerdict;
            },
            resend === null ? {} : { resend: async () => void (await invoke(resend, [])) },
          );
        } catch (error) {
          engineError ??= error;
          throw error;
        }
      },
      requestApproval: async (payload) => {
        const { request, check, pollMs } = payload as { request: ApprovalRequest; check: number; pollMs?: number };
        try {
          await ctx.requestApproval(
            request,
            async () =>
              (await invoke(check, [])) as Awaited<ReturnType<Parameters<LoginContext['requestApproval']>[1]>>,
            pollMs === undefined ? {} : { poll_ms: pollMs },
          );
          return null;
        } catch (error) {
          engineError ??= error;
          throw error;
        }
      },
    },
    (event) => {
      if (event.type === 'stage' && typeof event['name'] === 'string') ctx.stage(event['name'].slice(0, 64));
      if (event.type === 'log' && typeof event['msg'] === 'string') {
        const level = event['level'] === 'warn' ? 'warn' : event['level'] === 'info' ? 'info' : 'debug';
        ctx.log[level](redactor.apply(event['msg']), { script: true });
      }
    },
  );
  let trustCookies: string[] = [];
  try {
    const started = (await ask('start', {
      source: opts.source,
      wsEndpoint: lease.wsEndpoint,
      storageState: opts.storageState,
      credentials: ctx.credentials,
      baseUrl: opts.baseUrl,
      limits: opts.limits,
    })) as { trustCookies: string[] };
    trustCookies = started.trustCookies;
  } catch (error) {
    await end();
    throw error;
  }
  return {
    async login() {
      return ((await ask('login')) as { storageState: StorageState }).storageState;
    },
    data: (fn, args = []) => ask('data', { fn, args }),
    async close() {
      if (ended) return null;
      try {
        const answer = (await ask('close')) as { storageState: StorageState | null };
        return answer.storageState;
      } catch {
        return null;
      } finally {
        await end();
      }
    },
    engineError: () => engineError,
    trustCookies,
  };
}
