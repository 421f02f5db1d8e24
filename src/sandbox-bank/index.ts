import type { FastifyPluginAsync } from 'fastify';
import { listenStandalone } from '../http/standalone.js';
import { bankRoutes } from './routes.js';
import { type BankConfig, BankState } from './state.js';
import type { WebOptions } from './web/routes.js';
import type { WebLayout } from './web/views.js';

/** Knobs of a sandbox bank; every default matches docs/sandbox-bank.md, tests shrink them or inject a clock. */
export interface SandboxBankOptions {
  /** Millisecond clock, default `Date.now` (tests inject a fake clock). */
  now?: () => number;
  /** How long an SMS or TOTP challenge stays open, default 120 000. */
  codeValidityMs?: number;
  /** `corporate` asks for a code only when its last successful login is older than this, default 5 minutes. */
  corporateWindowMs?: number;
  /** Lifetime of a `trust` user's trust token, default 30 days. */
  trustValidityMs?: number;
  /** Delay of every bank API call of the `slow` user, default 2000. */
  slowMs?: number;
  /** How long an `approve` login waits for the phone, default 120 000. */
  approvalValidityMs?: number;
  /** Lifetime of a bank session token, default 15 minutes. */
  sessionValidityMs?: number;
  /** The website's idle session timeout, default 5 minutes. */
  webIdleMs?: number;
  /** How long the website's accounts page (its slow page) takes, default 1500. */
  webSlowMs?: number;
  /** The website's default layout, default `classic` (a `sbw_layout` cookie overrides it per browser). */
  webLayout?: WebLayout;
  /** Movements per page on the website, default 50. */
  webPageSize?: number;
}

/** One simulated bank: its routes and its counters. All its state lives in this object. */
export interface SandboxBank {
  /** Fastify plugin; the host registers it with `{ prefix: '/sandbox-bank' }`. */
  plugin: FastifyPluginAsync;
  /**
   * Simultaneous logins in progress right now and the maximum seen (a later issue checks per-bank concurrency
   * caps). A login is in progress from its `POST /api/login` until it gets a session, fails, or its code or
   * approval challenge is used, locked, cancelled or expired. `logins` counts every login call.
   */
  stats(): { activeLogins: number; maxActiveLogins: number; logins: number };
}

/** A running standalone sandbox bank. */
export interface SandboxBankServer {
  /** Base URL of the bank, ending in `/sandbox-bank/`. */
  url: string;
  close(): Promise<void>;
  stats: SandboxBank['stats'];
}

function positive(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value < 0) throw new RangeError(`${name} must be a non-negative number`);
  return value;
}

/** Builds a sandbox bank with its own in-memory state. */
export function makeSandboxBank(options: SandboxBankOptions = {}): SandboxBank {
  const config: BankConfig = {
    now: options.now ?? Date.now,
    codeValidityMs: positive('codeValidityMs', options.codeValidityMs, 120_000),
    corporateWindowMs: positive('corporateWindowMs', options.corporateWindowMs, 5 * 60_000),
    trustValidityMs: positive('trustValidityMs', options.trustValidityMs, 30 * 24 * 60 * 60_000),
    slowMs: positive('slowMs', options.slowMs, 2_000),
    approvalValidityMs: positive('approvalValidityMs', options.approvalValidityMs, 120_000),
    sessionValidityMs: positive('sessionValidityMs', options.sessionValidityMs, 15 * 60_000),
  };
  const state = new BankState(config);
  const web: WebOptions = {
    idleMs: positive('webIdleMs', options.webIdleMs, 5 * 60_000),
    slowMs: positive('webSlowMs', options.webSlowMs, 1_500),
    layout: options.webLayout ?? 'classic',
    pageSize: Math.max(1, Math.floor(positive('webPageSize', options.webPageSize, 50))),
    trustValidityMs: config.trustValidityMs,
  };
  return { plugin: bankRoutes(state, web), stats: () => state.stats() };
}

/** Standalone server (for `otpilot sandbox-bank --port N`): a Fastify app with the bank at `/sandbox-bank`. */
export async function startSandboxBankServer(opts: {
  port: number;
  host: string;
  bank?: SandboxBankOptions;
}): Promise<SandboxBankServer> {
  const bank = makeSandboxBank(opts.bank);
  const { app, url } = await listenStandalone({
    plugin: bank.plugin,
    prefix: '/sandbox-bank',
    port: opts.port,
    host: opts.host,
    extra: (app) => {
      app.get('/', async (_request, reply) => reply.redirect('/sandbox-bank/'));
      // The bank's own counters, for tests and benchmarks that run it as a separate process (the bank
      // says how many logins it saw at once: the per-bank concurrency cap is checked from its side).
      app.get('/sandbox-bank/stats', async () => bank.stats());
    },
  });
  return { url, close: () => app.close(), stats: bank.stats };
}
