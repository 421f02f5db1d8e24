import pino from 'pino';
import { findPendingRequest } from '../../src/assistance/reads.js';
import type { AssistanceRequest } from '../../src/assistance/request.js';
import { makeConnectorRegistry } from '../../src/connectors/registry.js';
import type { BankSession, CodeRequest, Connector, LoginContext } from '../../src/connectors/sdk.js';
import { leaseTerm } from '../../src/engine/claim.js';
import { type RunnerDeps, runSession } from '../../src/engine/runner.js';
import type { WatchdogLimits } from '../../src/engine/watchdog.js';
import { topics } from '../../src/events/topics.js';
import { makeRateLimits } from '../../src/security/rate-limits.js';
import { claimSessions, queueLogin } from '../../src/sessions/transitions.js';
import type { SessionsTable } from '../../src/store/schema.js';
import { eventually } from './flows.js';
import { startTestServer, type TestServer } from './server.js';

/** A bank session with nothing in it: the races under test end before any data is read. */
export const EMPTY_BANK: BankSession = {
  bankAccounts: async () => [],
  balances: async () => [],
  identity: async () => ({ name: 'Harness', email: null, phone: null }),
  movements: async () => [],
  close: async () => {},
};

/**
 * The engine below HTTP: a real server (real store, real bus) for the API side, and beside it this
 * worker, which claims sessions itself (queued and claimed in one transaction, so the server's own
 * pool never sees them) and runs them with `runSession` against a scripted connector.
 */
export interface EngineHarness {
  t: TestServer;
  /** An account of the scripted bank. */
  accountId: string;
  /** What the scripted connector's `login` does; set it per test. */
  script: (ctx: LoginContext) => Promise<BankSession>;
  /** The service clock: real time plus `offset`, or frozen at `frozen` when set. */
  clock: { offset: number; frozen: number | null; now(): number };
  deps: RunnerDeps;
  /**
   * Rings every waiter, as the passing of real time would have woken it when its deadline came:
   * call it after moving `clock` past a deadline something waits for (a wait's timer runs on real
   * time; only its deadline is on this clock).
   */
  wake(): void;
  /** Queues and claims a session of the account for this worker. */
  claim(): Promise<SessionsTable>;
  /** Claims and runs a session; resolves when the runner is done. */
  run(options?: { leaseLost?: AbortSignal; shutdown?: AbortSignal }): {
    sessionId: Promise<string>;
    done: Promise<void>;
  };
  close(): Promise<void>;
}

const OWNER = 'wkr_harness';

export async function startEngineHarness(
  options: { limits?: Partial<WatchdogLimits>; env?: Record<string, string> } = {},
): Promise<EngineHarness> {
  const clock = {
    offset: 0,
    frozen: null as number | null,
    now: () => clock.frozen ?? Date.now() + clock.offset,
  };
  const harness = {} as EngineHarness;
  const connector: Connector = {
    id: 'scripted',
    name: 'Scripted Bank',
    version: '1.0.0',
    credential_fields: [{ name: 'username', label: 'Username', type: 'text', required: true }],
    login: (ctx) => harness.script(ctx),
  };
  // A long lease: the server's own recovery must not end the harness's sessions unasked.
  const t = await startTestServer({
    clock: () => clock.now(),
    connectors: (builtin) => [...builtin, connector],
    env: { OTPILOT_LEASE_MS: '600000', ...options.env },
  });
  const created = await t.api.post('/v1/accounts', {
    bank_id: 'scripted',
    name: 'Scripted',
    credentials: { username: 'harness' },
  });
  if (created.status !== 201) throw new Error(`account: ${JSON.stringify(created.body)}`);
  const deps: RunnerDeps = {
    db: t.server.store.db,
    transact: t.server.transact,
    bus: t.server.bus,
    waiters: t.server.waiters,
    control: t.server.store.control,
    cipher: t.server.cipher,
    clock: () => clock.now(),
    pollMs: 200,
    registry: makeConnectorRegistry([connector]),
    keeper: t.server.engine.keeper,
    owner: OWNER,
    log: pino({ level: 'silent' }),
    limits: { sessionMs: 60_000, callMs: 30_000, ...options.limits },
    codeLimit: { limits: makeRateLimits({ db: t.server.store.db, clock: () => clock.now() }), perMinute: 1000 },
  };
  const claim = async (): Promise<SessionsTable> =>
    t.server.transact(async (trx, uow) => {
      const now = clock.now();
      const login = await queueLogin(trx, uow, {
        orgId: t.orgId,
        accountId: created.body.id,
        trigger: 'manual',
        now,
        join: false,
      });
      if (!login) throw new Error('a session is already active');
      const [session] = await claimSessions(trx, [login.sessionId], {
        owner: OWNER,
        until: now + leaseTerm(600_000),
        now,
      });
      if (!session) throw new Error('claim failed');
      return session;
    });
  Object.assign(harness, {
    t,
    accountId: created.body.id as string,
    script: async () => EMPTY_BANK,
    clock,
    deps,
    wake: () => t.server.bus.publish(topics.resync),
    claim,
    run(runOptions: { leaseLost?: AbortSignal; shutdown?: AbortSignal } = {}) {
      const session = claim();
      const done = session.then((s) =>
        runSession(deps, s, runOptions.shutdown ?? new AbortController().signal, runOptions.leaseLost),
      );
      return { sessionId: session.then((s) => s.id), done };
    },
    close: () => t.close(),
  });
  return harness;
}

/** A promise and the functions that settle it (a bank that answers when the test says). */
export function gate<T = void>(): { promise: Promise<T>; open(value: T): void } {
  let open: (value: T) => void = () => {};
  const promise = new Promise<T>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}

/** A six-digit SMS code request, and the code the scripted banks of the tests accept. */
export const SIX_DIGITS: CodeRequest = { length: 6, type: 'numeric', purpose: 'login', prompt: null };
export const RIGHT = '123456';

/** The harness account's pending request, once there is one. */
export async function pendingOf(harness: EngineHarness): Promise<AssistanceRequest> {
  return eventually(
    () => findPendingRequest(harness.t.server.store.db, harness.accountId),
    (request) => request !== undefined,
  ).then((request) => request!);
}
