import { setMaxListeners } from 'node:events';
import { readFileSync } from 'node:fs';
import { makeAccountsService } from './accounts/service.js';
import { makeStatusCache } from './accounts/status-cache.js';
import { buildApp, buildWorkerApp } from './app.js';
import { assistanceChecks } from './assistance/reads.js';
import type { CodeLimit } from './assistance/submit.js';
import { makeAuthService } from './auth/service.js';
import { makeTwoFactor } from './auth/two-factor.js';
import { syncBuiltinBanks } from './banks/repo.js';
import { makeBrowserRuntime } from './browser/runtime.js';
import { builtinConnectors, registryOf } from './connectors/builtin.js';
import { loadPlugins } from './connectors/plugins.js';
import { bankLimitsOf } from './connectors/registry.js';
import { systemClock } from './core/time.js';
import { makeDataService } from './data/service.js';
import { makeEngine } from './engine/index.js';
import { makeAdvisoryLeadership, soleLeader, withAdvisoryLock } from './engine/leader.js';
import { type Bus, makeMemoryBus } from './events/bus.js';
import { makeEventHorizon } from './events/horizon.js';
import { makeTransact } from './events/outbox.js';
import { makePostgresBus } from './events/pg-bus.js';
import { makeWaiters } from './events/waiters.js';
import { makeFintsBank } from './fints-bank/index.js';
import { makeMetrics } from './http/metrics.js';
import type { SystemInfo } from './http/system-routes.js';
import { makeKeysService } from './keys/service.js';
import { makeLogger } from './logger.js';
import { readStoreFigures } from './metrics/store-figures.js';
import { type BootstrapResult, bootstrapIfEmpty } from './orgs/bootstrap.js';
import { makeReauthService } from './reauth/service.js';
import { makeAccountSecrets } from './reconcile/secret.js';
import { makeReconcileService } from './reconcile/service.js';
import { makeSourceFetcher } from './reconcile/source.js';
import { makeReconnectService } from './reconnect/service.js';
import { makeRelayManagement } from './relay/management.js';
import { makeRelayService } from './relay/service.js';
import { makePruner } from './retention/prune.js';
import { makeSandboxBank } from './sandbox-bank/index.js';
import { makeRateLimits } from './security/rate-limits.js';
import type { RunningServer, ServerOptions } from './server-types.js';
import { makeSessionsService } from './sessions/service.js';
import {
  loopbackHost,
  openCipher,
  openStore,
  roleRefusal,
  showBootstrap,
  shutdownStep,
  verifyMasterKey,
} from './startup.js';
import { makeDatabaseHealth, makeProbe } from './store/health.js';
import { makeDeliveryEngine } from './webhooks/delivery.js';
import { makeSender } from './webhooks/sender.js';
import { makeWebhooksService } from './webhooks/service.js';
import { checkWebhookUrl } from './webhooks/url-safety.js';

export type { RunningServer, ServerOptions };

const VERSION = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string })
  .version;

/** Starts everything in one process: store, engine, HTTP API and (optionally) the sandbox bank. */

export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const { config } = options;
  const role = options.role ?? 'all';
  const refusal = roleRefusal(role, config);
  if (refusal) throw new Error(refusal);
  const serveApi = role !== 'worker';
  const runWork = role !== 'api';
  const clock = options.clock ?? systemClock;
  const random = options.random ?? Math.random;
  const log = options.log ?? makeLogger(config.logLevel);
  let baseUrl = '';
  // Connectors first: a bad plugin module stops the start before anything is opened.
  const plugins = await loadPlugins(config.connectors, process.cwd());
  // An id claimed twice also stops it here (the browser connectors' ids are checked below).
  registryOf(
    builtinConnectors(config, () => baseUrl),
    plugins,
    options.connectors,
  );
  const store = await openStore(config);
  const cipher = openCipher(config);
  await verifyMasterKey(store, cipher);

  const db = store.db;
  const pg = store.postgres;
  const pgBus = pg
    ? makePostgresBus({ db, clientConfig: pg.clientConfig, schema: pg.schema, log: log.child({ component: 'bus' }) })
    : null;
  await pgBus?.start();
  const bus: Bus = pgBus ?? makeMemoryBus();
  const waiters = makeWaiters({
    bus,
    checks: assistanceChecks(db),
    batchMs: config.pollMs,
    onError: (error) => log.debug({ err: error }, 'the waits’ fallback check failed'),
  });
  const probe = makeProbe(store);
  const health = makeDatabaseHealth({ probe: probe.probe, log, intervalMs: Math.min(config.pollMs, 1000) });
  const leadership = pg
    ? makeAdvisoryLeadership({ clientConfig: pg.clientConfig, name: `otpilot:scheduler:${pg.schema}`, log })
    : soleLeader;
  const transact = makeTransact({ db, dialect: store.dialect, bus, clock });
  const horizon = makeEventHorizon({ db, dialect: store.dialect });
  const browser = makeBrowserRuntime({ db, clock, settings: config.browser });
  // With the browser-script connectors, which read their scripts from the store.
  const registry = registryOf(
    builtinConnectors(config, () => baseUrl, browser),
    plugins,
    options.connectors,
  );
  // With several processes the bank's state (phones, codes) must live in one place: its own process.
  const sandboxBank = config.sandbox && role === 'all' ? makeSandboxBank(options.sandboxBank) : null;
  await syncBuiltinBanks(db, registry, clock());
  // A missing reference script costs its bank, not the start.
  await browser.seed(registry.all()).catch((error: unknown) => log.warn({ err: error }, 'bank scripts not seeded'));

  const checkUrl = (url: string) => checkWebhookUrl(url, { allowPrivate: config.allowPrivateUrls });
  const keys = makeKeysService({ db, clock });
  const twoFactor = makeTwoFactor({ db, cipher, clock });
  const auth = makeAuthService({ db, clock, twoFactor });
  // Status answers may be up to a second old only if a change ever failed to publish its wake-up.
  const statusCache = makeStatusCache({ db, bus, ttlMs: 1000 });
  const accounts = makeAccountsService({
    db,
    transact,
    cipher,
    clock,
    random,
    checkUrl,
  });
  const sessions = makeSessionsService({ db, transact, clock });
  const rateLimits = makeRateLimits({ db, clock });
  const codeLimit: CodeLimit = { limits: rateLimits, perMinute: config.codeRateLimitPerMinute };
  const relays = makeRelayManagement({ db, transact, cipher, clock });
  const relay = makeRelayService({
    db,
    transact,
    bus,
    cipher,
    clock,
    codeLimit,
    log: log.child({ component: 'relay' }),
    holdMs: config.smsHoldSeconds * 1000,
  });
  const reauth = makeReauthService({
    db,
    transact,
    bus,
    clock,
    cipher,
    accounts,
    codeLimit,
    log: log.child({ component: 'reauth' }),
    pollMs: config.pollMs,
  });
  const webhooks = makeWebhooksService({ db, transact, bus, cipher, clock, checkUrl });
  const delivery = makeDeliveryEngine({
    db,
    dialect: store.dialect,
    transact,
    bus,
    cipher,
    clock,
    random,
    log: log.child({ component: 'webhooks' }),
    sender: makeSender({ allowPrivate: config.allowPrivateUrls }),
    pollMs: config.pollMs,
    // A send may take 15 s and its lease is not renewed: never shorter than a minute.
    leaseMs: Math.max(config.leaseMs, 60_000),
    soleWorker: store.dialect === 'sqlite',
    concurrency: 50,
    version: VERSION,
    horizon,
  });
  const shutdown = new AbortController();
  // Every open long-poll listens for shutdown.
  setMaxListeners(0, shutdown.signal);
  const data = makeDataService({
    db,
    transact,
    bus,
    clock,
    waitMs: config.dataWaitSeconds * 1000,
    pollMs: config.pollMs,
    shutdown: shutdown.signal,
    onError: (error) => log.error({ err: error }, 'settling data API results failed'),
  });
  const reconnects = makeReconnectService({ db, transact, cipher, clock, codeLimit, bus, pollMs: config.pollMs });
  const sourceFetcher = makeSourceFetcher({
    allowPrivate: config.allowPrivateUrls,
    secretOf: makeAccountSecrets({ db, cipher }),
    clock,
  });
  const reconcile = makeReconcileService({
    db,
    transact,
    bus,
    clock,
    log: log.child({ component: 'reconcile' }),
    pollMs: config.pollMs,
    fetcher: sourceFetcher,
    checkUrl,
  });
  const pruner = makePruner({
    db,
    clock,
    log: log.child({ component: 'retention' }),
    policy: {
      eventsDays: config.eventsRetentionDays,
      deliveriesDays: config.deliveriesRetentionDays,
      resultsDays: config.resultsRetentionDays,
    },
    intervalMs: config.retentionIntervalSeconds * 1000,
  });
  const engine = makeEngine({
    db,
    control: store.control,
    dialect: store.dialect,
    leadership,
    databaseUp: health.up,
    // OTPILOT_BANK_CONCURRENCY combined with the connectors' own limits.
    ...bankLimitsOf(registry, config.bankLimits),
    transact,
    bus,
    waiters,
    cipher,
    clock,
    random,
    registry,
    log,
    concurrency: config.workerConcurrency,
    activeLogins: config.activeLogins,
    leaseMs: config.leaseMs,
    saturation: { lagMs: config.saturationLagMs, backlog: store.backlog ?? (() => 0), poolSize: config.pgPoolSize },
    pollMs: config.pollMs,
    schedulerTickMs: config.schedulerTickMs,
    trustWarningMs: config.trustWarningHours * 3_600_000,
    limits: { sessionMs: config.maxSessionSeconds * 1000, callMs: config.connectorCallSeconds * 1000 },
    soleWorker: store.dialect === 'sqlite',
    codeLimit,
    persistentSessions: config.persistentSessions,
  });
  const system: SystemInfo = {
    role,
    databaseUp: health.up,
    metrics: makeMetrics({
      databaseUp: health.up,
      leader: runWork ? leadership.current : null,
      running: runWork ? engine.pool.active : null,
      claimed: runWork ? engine.pool.claimed : null,
      figures: () => readStoreFigures(db, clock),
    }),
  };
  const app = !serveApi
    ? await buildWorkerApp({ log, system })
    : await buildApp({
        system,
        horizon,
        config,
        store,
        bus,
        clock,
        transact,
        keys,
        auth,
        twoFactor,
        data,
        reconnects,
        statusCache,
        accounts,
        sessions,
        cipher,
        codeLimit,
        rateLimits,
        relay,
        relays,
        reauth,
        reconcile,
        webhooks,
        shutdown: shutdown.signal,
        log,
        sandboxBank: sandboxBank?.plugin ?? null,
        fintsBank: sandboxBank ? makeFintsBank().plugin : null,
        browserScripts: browser.scripts,
        version: VERSION,
      });
  try {
    await app.listen({ port: config.port, host: config.host });
  } catch (error) {
    await app.close();
    await pgBus?.stop();
    await store.close();
    throw error;
  }
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  baseUrl = `http://${loopbackHost(config.host)}:${port}`;
  const bootstrapNow = () =>
    bootstrapIfEmpty({
      db,
      clock,
      sandbox: registry.get('sandbox') !== undefined,
      services: (trx) => ({
        keys: makeKeysService({ db: trx, clock }),
        accounts: makeAccountsService({
          db: trx,
          transact: makeTransact({ db: trx, dialect: store.dialect, bus, clock }),
          cipher,
          clock,
          random,
          checkUrl,
        }),
      }),
      // Runs before the bootstrap commits: secrets that cannot be delivered leave nothing behind.
      deliver: (result) =>
        options.printBootstrap
          ? options.printBootstrap(result, baseUrl)
          : showBootstrap(result, baseUrl, config.dataDir, log),
    });
  // Only processes that serve people bootstrap (the secrets are for them); two starting on an empty
  // PostgreSQL store take turns, so there is one first organization.
  let bootstrap: BootstrapResult | null = null;
  try {
    if (serveApi)
      bootstrap = pg
        ? await withAdvisoryLock(pg.clientConfig, `otpilot:bootstrap:${pg.schema}`, bootstrapNow)
        : await bootstrapNow();
  } catch (error) {
    await app.close();
    statusCache.close();
    await probe.close();
    await pgBus?.stop();
    await store.close();
    throw error;
  }
  health.start();
  if (runWork) {
    await engine.start();
    delivery.start();
    data.start();
    relay.start();
    reauth.start();
    reconcile.start();
    pruner.start();
  }
  log.info(
    { url: baseUrl, role, store: store.dialect, data_dir: config.dataDir, sandbox: config.sandbox },
    'otpilot started',
  );

  let closing: Promise<void> | null = null;
  return {
    url: baseUrl,
    port,
    app,
    store,
    bus,
    waiters,
    transact,
    cipher,
    engine,
    delivery,
    pruner,
    sandboxBank,
    browser,
    bootstrap,
    close() {
      closing ??= (async () => {
        const step = shutdownStep(log, config.shutdownStepMs);
        shutdown.abort();
        relay.stop();
        reauth.stop();
        await step('reconcile', () => reconcile.stop());
        await step('retention', () => pruner.stop());
        await step('engine', () => engine.stop());
        waiters.stop();
        await step('browser', () => browser.close());
        await step('webhooks', () => delivery.stop());
        await step('data', () => data.stop());
        await step('reconcile sources', () => sourceFetcher.close());
        await step('http', () => app.close());
        statusCache.close();
        health.stop();
        await step('probe', () => probe.close());
        await step('bus', () => pgBus?.stop());
        await step('store', () => store.close());
        log.info('otpilot stopped');
      })();
      return closing;
    },
  };
}
