import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { AssistanceWait } from './assistance/reads.js';
import type { BrowserRuntime } from './browser/runtime.js';
import type { Config } from './config.js';
import type { Connector } from './connectors/sdk.js';
import type { Clock } from './core/time.js';
import type { Engine } from './engine/index.js';
import type { Bus } from './events/bus.js';
import type { Transact } from './events/outbox.js';
import type { Waiters } from './events/waiters.js';
import type { Role } from './http/system-routes.js';
import type { BootstrapResult } from './orgs/bootstrap.js';
import type { Pruner } from './retention/prune.js';
import type { SandboxBank, SandboxBankOptions } from './sandbox-bank/index.js';
import type { Cipher } from './security/cipher.js';
import type { Store } from './store/db.js';
import type { DeliveryEngine } from './webhooks/delivery.js';

/** How `startServer` is called and what it returns (server.ts). */
export interface ServerOptions {
  config: Config;
  /**
   * What this process does [all]: `api` serves HTTP and never runs logins; `worker` runs the
   * scheduler (when it holds the lock), logins, webhooks and the other background duties, and serves
   * only `/health` and `/metrics`; `all` does both. `api` and `worker` need PostgreSQL.
   */
  role?: Role;
  clock?: Clock;
  random?: () => number;
  log?: Logger;
  /** Options of the in-process sandbox bank (tests inject its clock and windows). */
  sandboxBank?: SandboxBankOptions;
  /** Replaces the built-in connectors (the benchmark wraps the sandbox one to time the hand-off). */
  connectors?: (builtin: Connector[]) => Connector[];
  /** Where the bootstrap secrets go (once); default: the terminal, or a 0600 file in the data folder. */
  printBootstrap?: (result: BootstrapResult, baseUrl: string) => void;
}

export interface RunningServer {
  /** Base URL, e.g. http://127.0.0.1:3000 */
  url: string;
  port: number;
  app: FastifyInstance;
  store: Store;
  bus: Bus;
  /** The process's waits on assistance requests and their one batched fallback check. */
  waiters: Waiters<AssistanceWait>;
  /** One transaction with its outbox events (for tools that write beside the API, like the benchmark). */
  transact: Transact;
  /** The store's cipher (for tools and tests that drive the engine beside the API). */
  cipher: Cipher;
  /** Scheduler and workers (started only in the `worker` and `all` roles). */
  engine: Engine;
  /** Webhook fan-out and sending (started only in the `worker` and `all` roles). */
  delivery: DeliveryEngine;
  /** The retention job (started only in the `worker` and `all` roles). */
  pruner: Pruner;
  sandboxBank: SandboxBank | null;
  /** Chromium and the bank scripts of browser-script connectors. */
  browser: BrowserRuntime;
  bootstrap: BootstrapResult | null;
  close(): Promise<void>;
}
