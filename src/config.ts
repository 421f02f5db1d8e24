import { resolve } from 'node:path';
import type { BrowserSettings } from './browser/runtime.js';

/** Logger levels accepted by LOG_LEVEL. */
export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

/**
 * Everything the process reads from its environment (docs/configuration.md), validated
 * once at start. Defaults in brackets; durations in milliseconds unless the name says otherwise.
 */
export interface Config {
  /** PORT [3000]; 0 picks a free port. */
  port: number;
  /** HOST [127.0.0.1]. */
  host: string;
  /** OTPILOT_DATA_DIR [./data]: SQLite file and master key file. */
  dataDir: string;
  /** DATABASE_URL [absent = SQLite in the data dir]. */
  databaseUrl: string | null;
  /** OTPILOT_MASTER_KEY [absent = key file in the data dir, embedded mode only]. */
  masterKey: string | null;
  /** OTPILOT_SANDBOX [true]: mount the sandbox bank and seed the tour account. */
  sandbox: boolean;
  /** OTPILOT_SANDBOX_URL [the in-process bank at /sandbox-bank/]. */
  sandboxUrl: string | null;
  /** OTPILOT_ALLOW_PRIVATE_URLS [false]. */
  allowPrivateUrls: boolean;
  /** LOG_LEVEL [info]. */
  logLevel: LogLevel;
  /** OTPILOT_WORKER_CONCURRENCY [500]: logins running at once in this process (waiting ones included). */
  workerConcurrency: number;
  /** OTPILOT_LEASE_MS [30000]: a session whose worker stops renewing is failed (`worker_lost`) after this. */
  leaseMs: number;
  /**
   * OTPILOT_SATURATION_LAG_MS [1000]: while this process's event loop runs this late (the worst of the
   * last second), or more queries wait for a database connection than the pool holds, it claims no
   * new sessions (they stay queued for it or another worker).
   */
  saturationLagMs: number;
  /**
   * OTPILOT_ACTIVE_LOGINS [10 × OTPILOT_PG_POOL_SIZE on PostgreSQL, 100 on SQLite]: logins this process
   * runs at once that are not waiting for a person; more are claimed as these end or start waiting.
   */
  activeLogins: number;
  /** OTPILOT_BANK_CONNECTIONS [64]: HTTP connections open at once to one bank origin per process; more calls wait. */
  bankConnections: number;
  /**
   * OTPILOT_MAX_SESSION_SECONDS [7200]: the longest one session may run, waits for codes included;
   * past it the session ends `connector_timeout`. Longer than the longest code wait (3600 s).
   */
  maxSessionSeconds: number;
  /**
   * OTPILOT_CONNECTOR_CALL_SECONDS [120]: the longest one connector call (`login` without its waits
   * for a person, `tryCode`, a data call) may take before the session ends `connector_timeout`.
   */
  connectorCallSeconds: number;
  /** OTPILOT_POLL_MS [1000]: fallback poll behind every event-driven wake-up. */
  pollMs: number;
  /**
   * OTPILOT_DATA_WAIT_SECONDS [50]: how long a data API call that needs a live login waits before it
   * answers `PENDING` (the login goes on; `results_ready` fires when it ends).
   */
  dataWaitSeconds: number;
  /** OTPILOT_SCHEDULER_TICK_MS [1000]. */
  schedulerTickMs: number;
  /** OTPILOT_CODE_RATE_LIMIT [10]: code submissions per account per minute. */
  codeRateLimitPerMinute: number;
  /** OTPILOT_BODY_LIMIT [1048576]: request body limit in bytes. */
  bodyLimit: number;
  /**
   * OTPILOT_TRUST_PROXY [false]: behind a reverse proxy, trust its X-Forwarded-* headers (client
   * address, https), so same-origin checks and Secure cookies see what the browser sees.
   */
  trustProxy: boolean;
  /**
   * OTPILOT_PUBLIC_URL [unset]: the origin browsers and Twilio use to reach this service
   * (`https://otpilot.example.com`), stored as the origin alone. When set, same-origin checks and
   * relay URLs use it instead of the request's `Host` (which a client chooses).
   */
  publicUrl: string | null;
  /**
   * OTPILOT_SMS_HOLD_SECONDS [60]: a relayed SMS that arrives before any request waits for it is kept
   * (encrypted) this long, counted from when the phone received it, and used if a request opens.
   */
  smsHoldSeconds: number;
  /** OTPILOT_TRUST_WARNING_HOURS [72]: `trust_expiring` is emitted this long before an account's bank trust ends. */
  trustWarningHours: number;
  /**
   * OTPILOT_BANK_CONCURRENCY [none]: `bank=N,bank=N`, the most logins running against a bank at once
   * across every worker process (a bank absent from the list has no limit).
   */
  bankLimits: ReadonlyMap<string, number>;
  /** OTPILOT_PG_POOL_SIZE [10]: PostgreSQL connections per process (plus one for wake-ups and one for the health probe, and on workers one for the scheduler lock and one for lease heartbeats). */
  pgPoolSize: number;
  /**
   * OTPILOT_PG_CONNECT_TIMEOUT_MS [30000]: how long a query waits for a pooled connection (or for a new
   * one to open) before it fails. Generous, so a burst of work queues instead of failing; an outage is
   * noticed sooner by the health probe (its own connection, 5 s), which makes the API answer 503 at once.
   */
  pgConnectTimeoutMs: number;
  /** OTPILOT_EVENTS_RETENTION_DAYS [30]: outbox events kept this long (0: forever); see RetentionPolicy. */
  eventsRetentionDays: number;
  /** OTPILOT_DELIVERIES_RETENTION_DAYS [30]: finished webhook deliveries and their attempts (0: forever). */
  deliveriesRetentionDays: number;
  /** OTPILOT_RESULTS_RETENTION_DAYS [30]: data API results, counted from their expiry (0: forever). */
  resultsRetentionDays: number;
  /** OTPILOT_RETENTION_INTERVAL_SECONDS [3600]: between two pruning passes (workers only). */
  retentionIntervalSeconds: number;
  /**
   * OTPILOT_CONNECTORS [none]: comma-separated module specifiers (paths, relative to the working
   * folder, or installed package names) whose default export is a connector or an array of them.
   */
  connectors: string[];
  /**
   * OTPILOT_PERSISTENT_SESSIONS [100]: open bank sessions (accounts with `session_type: persistent`)
   * one worker process keeps between scrapes; past it, sessions are closed after their scrape.
   */
  persistentSessions: number;
  /** OTPILOT_SHUTDOWN_STEP_MS [10000]: the longest each shutdown step may take before the next one starts anyway. */
  shutdownStepMs: number;
  /**
   * The FinTS connector's settings: OTPILOT_FINTS_PRODUCT_ID [unset: FinTS logins fail `connector_broken`],
   * OTPILOT_FINTS_TAN_METHOD [the bank's first], OTPILOT_FINTS_TAN_MEDIUM [none]; accounts may name their own.
   */
  fints: { productId: string | null; productVersion: string; tanMethod: number | null; tanMedium: string | null };
  /** Browser-script connectors: CHROMIUM_PATH, OTPILOT_BROWSER_* (docs/browser-scripts.md). */
  browser: BrowserSettings;
}

export type ConfigResult = { ok: true; config: Config } | { ok: false; errors: string[] };

type Env = Record<string, string | undefined>;

export function loadConfig(env: Env = process.env): ConfigResult {
  const errors: string[] = [];
  const int = (name: string, fallback: number, min: number, max: number): number => {
    const raw = env[name];
    if (raw === undefined || raw === '') return fallback;
    const value = Number(raw);
    if (!Number.isInteger(value) || value < min || value > max) {
      errors.push(`${name} must be a whole number from ${min} to ${max}`);
      return fallback;
    }
    return value;
  };
  const bool = (name: string, fallback: boolean): boolean => {
    const raw = env[name]?.toLowerCase();
    if (raw === undefined || raw === '') return fallback;
    if (['1', 'true', 'yes', 'on'].includes(raw)) return true;
    if (['0', 'false', 'no', 'off'].includes(raw)) return false;
    errors.push(`${name} must be true or false`);
    return fallback;
  };
  const oneOf = <T extends string>(name: string, allowed: readonly T[], fallback: T): T => {
    const raw = env[name];
    if (raw === undefined || raw === '') return fallback;
    if ((allowed as readonly string[]).includes(raw)) return raw as T;
    errors.push(`${name} must be one of ${allowed.join(', ')}`);
    return fallback;
  };
  const levels: LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
  const logLevel = (env.LOG_LEVEL || 'info') as LogLevel;
  if (!levels.includes(logLevel)) errors.push(`LOG_LEVEL must be one of ${levels.join(', ')}`);
  const databaseUrl = env.DATABASE_URL || null;
  if (databaseUrl && !/^postgres(ql)?:\/\//.test(databaseUrl)) errors.push('DATABASE_URL must be a postgres:// URL');

  const pgPoolSize = int('OTPILOT_PG_POOL_SIZE', 10, 1, 1000);
  const config: Config = {
    port: int('PORT', 3000, 0, 65535),
    host: env.HOST || '127.0.0.1',
    dataDir: resolve(env.OTPILOT_DATA_DIR || './data'),
    databaseUrl,
    masterKey: env.OTPILOT_MASTER_KEY || null,
    sandbox: bool('OTPILOT_SANDBOX', true),
    sandboxUrl: env.OTPILOT_SANDBOX_URL || null,
    allowPrivateUrls: bool('OTPILOT_ALLOW_PRIVATE_URLS', false),
    logLevel,
    workerConcurrency: int('OTPILOT_WORKER_CONCURRENCY', 500, 1, 100_000),
    leaseMs: int('OTPILOT_LEASE_MS', 30_000, 500, 3_600_000),
    saturationLagMs: int('OTPILOT_SATURATION_LAG_MS', 1000, 10, 60_000),
    bankConnections: int('OTPILOT_BANK_CONNECTIONS', 64, 1, 10_000),
    activeLogins: int('OTPILOT_ACTIVE_LOGINS', env.DATABASE_URL ? 10 * pgPoolSize : 100, 1, 100_000),
    maxSessionSeconds: int('OTPILOT_MAX_SESSION_SECONDS', 7200, 1, 86_400),
    connectorCallSeconds: int('OTPILOT_CONNECTOR_CALL_SECONDS', 120, 1, 3600),
    pollMs: int('OTPILOT_POLL_MS', 1000, 10, 60_000),
    schedulerTickMs: int('OTPILOT_SCHEDULER_TICK_MS', 1000, 10, 60_000),
    codeRateLimitPerMinute: int('OTPILOT_CODE_RATE_LIMIT', 10, 1, 1_000_000),
    bodyLimit: int('OTPILOT_BODY_LIMIT', 1024 * 1024, 1024, 64 * 1024 * 1024),
    trustProxy: bool('OTPILOT_TRUST_PROXY', false),
    publicUrl: origin('OTPILOT_PUBLIC_URL', env, errors),
    smsHoldSeconds: int('OTPILOT_SMS_HOLD_SECONDS', 60, 1, 3600),
    trustWarningHours: int('OTPILOT_TRUST_WARNING_HOURS', 72, 1, 8760),
    dataWaitSeconds: int('OTPILOT_DATA_WAIT_SECONDS', 50, 0, 600),
    bankLimits: bankLimits(env.OTPILOT_BANK_CONCURRENCY ?? '', errors),
    pgPoolSize,
    pgConnectTimeoutMs: int('OTPILOT_PG_CONNECT_TIMEOUT_MS', 30_000, 100, 600_000),
    eventsRetentionDays: int('OTPILOT_EVENTS_RETENTION_DAYS', 30, 0, 36_500),
    deliveriesRetentionDays: int('OTPILOT_DELIVERIES_RETENTION_DAYS', 30, 0, 36_500),
    resultsRetentionDays: int('OTPILOT_RESULTS_RETENTION_DAYS', 30, 0, 36_500),
    retentionIntervalSeconds: int('OTPILOT_RETENTION_INTERVAL_SECONDS', 3600, 1, 604_800),
    shutdownStepMs: int('OTPILOT_SHUTDOWN_STEP_MS', 10_000, 100, 600_000),
    fints: fintsSettings(env, errors),
    persistentSessions: int('OTPILOT_PERSISTENT_SESSIONS', 100, 0, 100_000),
    connectors: (env.OTPILOT_CONNECTORS ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
    browser: {
      chromiumPath: env.CHROMIUM_PATH || '/usr/bin/chromium',
      isolation: oneOf('OTPILOT_BROWSER_ISOLATION', ['context', 'process'] as const, 'context'),
      concurrency: int('OTPILOT_BROWSER_CONCURRENCY', 4, 1, 1000),
      evidenceDays: int('OTPILOT_BROWSER_EVIDENCE_DAYS', 14, 0, 36_500),
    },
  };
  if (config.sandboxUrl && !/^https?:\/\//.test(config.sandboxUrl))
    errors.push('OTPILOT_SANDBOX_URL must be an http(s) URL');
  return errors.length > 0 ? { ok: false, errors } : { ok: true, config };
}

/** The FinTS product id is HKVVB's AN..25; a TAN method is a security function (900-997); a medium AN..32. */
function fintsSettings(env: Env, errors: string[]): Config['fints'] {
  const productId = env.OTPILOT_FINTS_PRODUCT_ID?.trim() || null;
  if (productId !== null && !/^[A-Za-z0-9]{1,25}$/.test(productId))
    errors.push('OTPILOT_FINTS_PRODUCT_ID must be 1 to 25 letters and digits');
  const method = env.OTPILOT_FINTS_TAN_METHOD?.trim() || null;
  const tanMethod = method === null ? null : Number(method);
  if (tanMethod !== null && !(Number.isInteger(tanMethod) && tanMethod >= 900 && tanMethod <= 997))
    errors.push('OTPILOT_FINTS_TAN_METHOD must be a TAN method number from 900 to 997');
  const tanMedium = env.OTPILOT_FINTS_TAN_MEDIUM?.trim() || null;
  if (tanMedium !== null && !/^[\u0020-\u007e\u00a0-\u00ff]{1,32}$/.test(tanMedium))
    errors.push('OTPILOT_FINTS_TAN_MEDIUM must be 1 to 32 printable ISO-8859-1 characters');
  return { productId, productVersion: '0.1', tanMethod, tanMedium };
}

/** An http(s) URL with no path, query or credentials, as its origin (`https://host[:port]`). */
function origin(name: string, env: Env, errors: string[]): string | null {
  const raw = env[name];
  if (!raw) return null;
  let url: URL | null = null;
  try {
    url = new URL(raw);
  } catch {
    // reported below
  }
  if (
    !url ||
    !/^https?:$/.test(url.protocol) ||
    url.username ||
    url.password ||
    url.pathname !== '/' ||
    url.search ||
    url.hash
  ) {
    errors.push(`${name} must be an http(s) origin such as https://otpilot.example.com (no path)`);
    return null;
  }
  return url.origin;
}

/** Parses OTPILOT_BANK_CONCURRENCY (`bank=N,bank=N`); a malformed entry is reported in `errors`. */
function bankLimits(raw: string, errors: string[]): Map<string, number> {
  const limits = new Map<string, number>();
  for (const part of raw
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean)) {
    const match = /^([A-Za-z0-9_.:-]+)\s*=\s*(\d+)$/.exec(part);
    const n = match ? Number(match[2]) : Number.NaN;
    if (!match || !Number.isInteger(n) || n < 1)
      errors.push(`OTPILOT_BANK_CONCURRENCY: "${part}" is not bank=N (N ≥ 1)`);
    else limits.set(match[1]!, n);
  }
  return limits;
}
