import {
  type Balance,
  type BankAccount,
  type BankSession,
  type Connector,
  ConnectorError,
  type ConnectorErrorKind,
  type FieldSpec,
  type Identity,
  type LoginContext,
  type Movement,
} from '../connectors/sdk.js';
import { sessionRefOf } from '../connectors/session-ref.js';
import type { ChromiumPool } from './chromium.js';
import { makeRedactor, type Redactor } from './redact.js';
import { ScriptFailure } from './rpc.js';
import type { RunRecorder, RunRef } from './runs.js';
import { type RunLimits, type ScriptRun, type StorageState, startScriptRun } from './script-run.js';
import type { ScriptCatalog } from './scripts.js';
import { checkList, checkObject } from './shapes.js';

const KINDS: ConnectorErrorKind[] = [
  'invalid_credentials',
  'account_locked',
  'code_rejected',
  'bank_unavailable',
  'connector_broken',
];

/** What a browser-script connector needs (server.ts builds one per browser bank). */
export interface BrowserConnectorOptions {
  id: string;
  name: string;
  credentialFields: FieldSpec[];
  /** The bank website's base URL, read per login and handed to the script as `ctx.baseUrl`. */
  baseUrl: () => string;
  scripts: ScriptCatalog;
  runs: RunRecorder;
  pool: ChromiumPool;
  limits: RunLimits;
}

function parseState(stored: string | null): StorageState | null {
  if (stored === null) return null;
  try {
    const value = JSON.parse(stored) as unknown;
    return typeof value === 'object' && value !== null && Array.isArray((value as StorageState).cookies)
      ? (value as StorageState)
      : null;
  } catch {
    // Trust written by something else (an older connector): start with a fresh profile.
    return null;
  }
}

/**
 * When the bank stops trusting this browser: the latest expiry among the cookies the script names as
 * its trust (`trustCookies`), or null when there are none (a consent cookie is no trust).
 */
function trustExpiry(state: StorageState, names: readonly string[]): Date | null {
  const ends = (state.cookies ?? [])
    .filter((c) => names.includes(String(c.name)))
    .map((c) => Number(c.expires))
    .filter((s) => Number.isFinite(s) && s > 0);
  return ends.length === 0 ? null : new Date(Math.max(...ends) * 1000);
}

/** Cookie values are secrets too: none may appear in evidence or errors. */
function addCookies(redactor: Redactor, state: StorageState | null): void {
  for (const c of state?.cookies ?? []) if (typeof c.value === 'string') redactor.add(c.value);
}

/**
 * A connector whose login is a bank script from the database run in Chromium (docs/browser-scripts.md).
 * The script's version is chosen per login (the account's pin, else the bank's active version) and
 * recorded with the session; the browser's storage state is the account's trust.
 */
/** The browser connector runtime's version (shown for browser banks until a script is active). */
export const BROWSER_RUNTIME_VERSION = '1.0.0';

export function makeBrowserConnector(options: BrowserConnectorOptions): Connector {
  return {
    id: options.id,
    name: options.name,
    // The runtime's version; the bank's `script_version` is the script a login runs.
    version: BROWSER_RUNTIME_VERSION,
    credential_fields: options.credentialFields,
    async login(ctx: LoginContext): Promise<BankSession> {
      const ref = sessionRefOf(ctx);
      const script = await options.scripts.choose(options.id, ref?.accountId ?? null);
      if (script === null) throw new ConnectorError('connector_broken', `bank ${options.id} has no active script`);
      if (ref) await options.runs.started(ref, options.id, script.version);
      ctx.stage(`script ${script.version}`);
      const redactor = makeRedactor();
      for (const value of Object.values(ctx.credentials)) redactor.add(value);
      const storageState = parseState(await ctx.trust.get());
      addCookies(redactor, storageState);
      let run: ScriptRun | null = null;
      try {
        run = await startScriptRun({
          pool: options.pool,
          limits: options.limits,
          source: script.source,
          baseUrl: options.baseUrl(),
          storageState,
          ctx,
          redactor,
        });
        const state = await run.login();
        addCookies(redactor, state);
        await ctx.trust.set(JSON.stringify(state), { expires_at: trustExpiry(state, run.trustCookies) });
      } catch (error) {
        const failure = await fail(ctx, ref, options.runs, redactor, run, error);
        await run?.close();
        throw failure;
      }
      return session(ctx, ref, options.runs, redactor, run);
    },
  };
}

/** The error a failed step ends the session with; records the evidence first. */
async function fail(
  ctx: LoginContext,
  ref: RunRef | null,
  runs: RunRecorder,
  redactor: Redactor,
  run: ScriptRun | null,
  error: unknown,
): Promise<unknown> {
  // A cancelled session, or the engine's own end of a code wait, passes through untouched.
  if (ctx.signal.aborted) return ctx.signal.reason;
  const engine = run?.engineError();
  const described = error instanceof ScriptFailure ? error.described : null;
  const message = redactor.apply(described?.message ?? (error instanceof Error ? error.message : String(error)));
  if (ref && !(engine && !described?.evidence)) {
    await runs.failed(ref, message, described?.evidence ?? null, redactor).catch(() => {});
  }
  if (engine) return engine;
  const kind = described?.kind as ConnectorErrorKind | null | undefined;
  if (kind && KINDS.includes(kind)) return new ConnectorError(kind, message);
  return new ConnectorError('connector_broken', `the bank script failed: ${message}`);
}

function session(
  ctx: LoginContext,
  ref: RunRef | null,
  runs: RunRecorder,
  redactor: Redactor,
  run: ScriptRun,
): BankSession {
  const call = async <T>(fn: Parameters<ScriptRun['data']>[0], check: (v: unknown) => T, args?: unknown[]) => {
    try {
      return check(await run.data(fn, args));
    } catch (error) {
      throw await fail(ctx, ref, runs, redactor, run, error);
    }
  };
  return {
    bankAccounts: () =>
      call('bankAccounts', (v) => checkList<BankAccount>(v, 'bankAccounts', ['id', 'name', 'currency', 'type'])),
    balances: () =>
      call('balances', (v) => checkList<Balance>(v, 'balances', ['bank_account_id', 'current', 'currency', 'as_of'])),
    identity: () => call('identity', (v) => checkObject<Identity>(v, 'identity', ['name'])),
    movements: (range) =>
      call(
        'movements',
        (v) => checkList<Movement>(v, 'movements', ['bank_account_id', 'booked_at', 'amount', 'currency', 'name']),
        [range],
      ),
    keepAlive: () => call('keepAlive', (v) => v === true),
    async close() {
      const state = await run.close();
      if (state) await ctx.trust.set(JSON.stringify(state), { expires_at: trustExpiry(state, run.trustCookies) });
    },
  };
}
