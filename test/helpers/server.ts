import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { loadConfig } from '../../src/config.js';
import type { Connector } from '../../src/connectors/sdk.js';
import { makeKeysService } from '../../src/keys/service.js';
import type { SandboxBankOptions } from '../../src/sandbox-bank/index.js';
import { type RunningServer, startServer } from '../../src/server.js';
import { type Api, makeApi } from './api.js';
import { dropStore, storeEnv } from './store.js';

export interface TestServer {
  url: string;
  /** The bootstrap API key (every scope). */
  key: string;
  /** The bootstrap tour account (sandbox user `otp`). */
  tourAccountId: string;
  orgId: string;
  dataDir: string;
  server: RunningServer;
  api: Api;
  close(): Promise<void>;
}

/** Fast timings for tests; every test can override them. */
export const TEST_ENV: Record<string, string> = {
  PORT: '0',
  HOST: '127.0.0.1',
  LOG_LEVEL: 'silent',
  OTPILOT_ALLOW_PRIVATE_URLS: 'true',
  OTPILOT_POLL_MS: '200',
  OTPILOT_SCHEDULER_TICK_MS: '100',
  OTPILOT_CODE_RATE_LIMIT: '1000',
};

export function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'otpilot-test-'));
}

/** Starts the real server (SQLite file in a fresh folder, ephemeral port, in-process sandbox bank). */
export async function startTestServer(
  options: {
    env?: Record<string, string>;
    sandboxBank?: SandboxBankOptions;
    /** Reopen an existing store (a process restart), with what its first start created. */
    dataDir?: string;
    reopen?: { key: string; tourAccountId: string; orgId: string };
    clock?: () => number;
    /** Replaces the built-in connectors (a test wraps the sandbox one to control a bank's timing). */
    connectors?: (builtin: Connector[]) => Connector[];
    /** The server's logger (default: none, LOG_LEVEL silent). */
    log?: Logger;
  } = {},
): Promise<TestServer> {
  const dataDir = options.dataDir ?? tempDir();
  const loaded = loadConfig({ ...TEST_ENV, OTPILOT_DATA_DIR: dataDir, ...(await storeEnv(dataDir)), ...options.env });
  if (!loaded.ok) throw new Error(loaded.errors.join('; '));
  const server = await startServer({
    config: loaded.config,
    printBootstrap: () => {},
    ...(options.sandboxBank ? { sandboxBank: options.sandboxBank } : {}),
    ...(options.clock ? { clock: options.clock } : {}),
    ...(options.connectors ? { connectors: options.connectors } : {}),
    ...(options.log ? { log: options.log } : {}),
  });
  const bootstrap = options.reopen
    ? { apiKey: options.reopen.key, sandboxAccountId: options.reopen.tourAccountId, orgId: options.reopen.orgId }
    : server.bootstrap;
  if (!bootstrap?.sandboxAccountId) throw new Error('expected a fresh store with a tour account');
  return {
    url: server.url,
    key: bootstrap.apiKey,
    tourAccountId: bootstrap.sandboxAccountId,
    orgId: bootstrap.orgId,
    dataDir,
    server,
    api: makeApi(server.url, bootstrap.apiKey),
    async close() {
      await server.close();
      if (!options.dataDir) {
        rmSync(dataDir, { recursive: true, force: true });
        await dropStore(dataDir);
      }
    },
  };
}

/** A key of the test server's first organization with `instance:admin` (as `otpilot keys create --scopes instance:admin` makes). */
export async function instanceAdminKey(t: TestServer): Promise<string> {
  const created = await makeKeysService({ db: t.server.store.db, clock: Date.now }).create({
    orgId: t.orgId,
    name: 'instance admin',
    scopes: 'instance:admin',
    accountIds: null,
    createdBy: null,
  });
  if (!created.ok) throw new Error(created.message);
  return created.value.key;
}

/** Signs in as the first-start admin, as the dashboard does; returns the session token for `/accounts/…` calls. */
export async function dashboardToken(t: TestServer): Promise<string> {
  const signIn = await fetch(`${t.url}/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email: 'admin@otpilot.local', password: t.server.bootstrap?.adminPassword }),
  });
  if (signIn.status !== 200) throw new Error(`sign-in answered ${signIn.status}`);
  return ((await signIn.json()) as { token: string }).token;
}
