/*
 * otpilot connector SDK 1.0 (`otpilot/sdk`). Self-contained on purpose: it imports nothing, so a
 * connector (even one in plain JavaScript that imports nothing at all) depends only on these shapes.
 *
 * Stability: everything exported here is stable within SDK 1.x (docs/connectors.md "Stability"):
 * fields and methods are only ever added as optional, never renamed or removed. Data fields are
 * snake_case, like the API's JSON; methods are camelCase. Items marked "@experimental" may change in a
 * minor release.
 */

/** The SDK's own version (semver); connectors may log it or refuse to load under a major they do not know. */
export const SDK_VERSION = '1.0.0';

// ---- credentials ------------------------------------------------------------------------------------------------

/** One credential field a bank asks for (shown in forms, validated when an account is created). */
export interface FieldSpec<K extends string = string> {
  /** The key in `ctx.credentials` and in the API's `credentials` object. */
  name: K;
  /** What forms show. */
  label: string;
  /** `password` fields are never echoed back (the API masks them). */
  type: 'text' | 'password';
  /** A required field must not be empty. */
  required: boolean;
  /**
   * A JavaScript regular expression a given value must match (anchor it with ^…$); checked when an
   * account is created or its credentials change, so a malformed value is refused then (422), not at
   * the first login. Absent: any value.
   */
  pattern?: string;
  /** What a value must look like, the error message when it does not match `pattern`. */
  hint?: string;
}

// ---- data -------------------------------------------------------------------------------------------------------

/** One ledger inside a bank login. Amounts are decimal strings in the currency's major unit ("-12.34"). */
export interface BankAccount {
  /** The bank's own stable id for this ledger. */
  id: string;
  name: string;
  iban: string | null;
  number: string | null;
  /** ISO 4217, e.g. `EUR`. */
  currency: string;
  /** Free text, e.g. `current`, `savings`, `credit_card`. */
  type: string;
}

export interface Balance {
  /** A `BankAccount.id` of the same login. */
  bank_account_id: string;
  /** Decimal string, major unit. */
  current: string;
  /** Decimal string, major unit; null when the bank does not say. */
  available: string | null;
  currency: string;
  /** ISO-8601 timestamp. */
  as_of: string;
}

export interface Identity {
  name: string;
  email: string | null;
  phone: string | null;
}

/** One bank transaction as the connector reads it. */
export interface Movement {
  /** The bank's transaction id when it has one; otherwise null and the engine derives a stable key. */
  id: string | null;
  bank_account_id: string;
  /** ISO-8601 date or timestamp of booking. */
  booked_at: string;
  /** Decimal string, major unit, negative for debits. */
  amount: string;
  currency: string;
  /** The counterparty or the bank's description. */
  name: string;
  reference: string | null;
}

/** Inclusive range of ISO dates (YYYY-MM-DD). */
export interface DateRange {
  from: string;
  to: string;
}

// ---- codes and approvals ----------------------------------------------------------------------------------------

/** `numeric`: digits only; `alphanumeric`: ASCII letters and digits. */
export type CodeType = 'numeric' | 'alphanumeric';

/**
 * Where the code comes from, when the connector knows. `sms`: the bank texts it (a relayed SMS can
 * answer, and `resend` asks for another); `authenticator`: an authenticator app (TOTP), so the
 * account's stored TOTP secret can answer without a person.
 */
export type CodeChannel = 'sms' | 'authenticator';

/** What the bank asks for when it pauses a login (shown to the person, checked before `tryCode`). */
export interface CodeDescriptor {
  /** Exact number of characters, or null when the bank does not say (then at most 32). */
  length: number | null;
  type: CodeType;
  /** Why the bank asks, e.g. `login` (free text, shown and sent in events). */
  purpose: string;
  /** The bank's own words, if any (shown to the person as is). */
  prompt: string | null;
  /** Where the code comes from; null or absent: unknown (only a person or a relayed SMS can answer). */
  channel?: CodeChannel | null;
}

/** What the bank says when it waits for the user to approve the login in its app (no code, no length). */
export interface ApprovalDescriptor {
  /** Why the bank asks, e.g. `login`. */
  purpose: string;
  /** The bank's own words, if any. */
  prompt: string | null;
}

/** What the bank said about one code; on acceptance, `value` is what `requestCode` resolves with (a token, a session). */
export type CodeVerdict<T = unknown> = { outcome: 'accepted'; value?: T } | { outcome: 'rejected'; reason?: string };

/** A code request as the connector describes it. */
export interface CodeRequest extends CodeDescriptor {
  /** Codes the bank may judge before the request ends [3]; never more than 3. Keep it below the bank's own limit. */
  max_attempts?: number;
}

/** What a connector can do for a waiting request besides judging codes. */
export interface CodeRequestOptions {
  /**
   * Asks the bank to send a new code (a new SMS). The engine calls it when the account's
   * `resend_after_seconds` passes without a code, at most `max_resends` times per request.
   */
  resend?: () => Promise<void>;
}

/** A bank that waits for the user to approve the login in its app (decoupled approval). */
export type ApprovalRequest = ApprovalDescriptor;

/**
 * What the bank says about an approval when asked: given, still waited for, or timed out on its side.
 * A refusal or any other end is the connector's to throw (a connector error, `code_rejected`).
 */
export type ApprovalStatus = { outcome: 'approved' } | { outcome: 'pending' } | { outcome: 'expired' };

export interface ApprovalOptions {
  /** How often to call `check`, ms [1000]; kept between 100 and 10 000. */
  poll_ms?: number;
}

// ---- the login context ------------------------------------------------------------------------------------------

/** Persisted per-account trust (cookies, device tokens), stored encrypted by the engine. */
export interface TrustStore {
  /** The stored value, or null (none stored, or an operator forgot it). */
  get(): Promise<string | null>;
  /**
   * Stores (or with null, forgets) the trust. Give `expires_at` when the bank says how long it honours
   * it: the account shows it (`trust_expires_at`) and a `trust_expiring` event warns ahead of it.
   */
  set(value: string | null, options?: { expires_at?: Date | null }): Promise<void>;
}

/** Writes to the service log with the session id. Never pass credentials, codes or tokens. */
export interface ConnectorLogger {
  debug(msg: string, data?: Record<string, unknown>): void;
  info(msg: string, data?: Record<string, unknown>): void;
  warn(msg: string, data?: Record<string, unknown>): void;
  error(msg: string, data?: Record<string, unknown>): void;
}

/** What `login` gets. `K`: the credential keys (typed when the connector is made with `defineConnector`). */
export interface LoginContext<K extends string = string> {
  /** Decrypted only in memory, for the duration of this login; one entry per credential field. */
  readonly credentials: Readonly<Record<K, string>>;
  /**
   * Pauses the login until a code arrives, then calls `tryCode` with it (once per submitted code) and
   * records the verdict: resolves after an `accepted` verdict, with the verdict's `value`; keeps waiting after `rejected` while
   * attempts remain. When the request expires, runs out of attempts or is withdrawn, it throws the
   * engine's own error (`isEngineStop(err)` is true): let it propagate. Errors thrown by `tryCode`
   * end the request and propagate.
   */
  requestCode<T = unknown>(
    request: CodeRequest,
    tryCode: (code: string) => Promise<CodeVerdict<T>>,
    options?: CodeRequestOptions,
  ): Promise<T | undefined>;
  /**
   * Pauses the login while the bank waits for the user to approve it in the bank's app: opens an
   * assistance request of type `approval` (it takes no code) and calls `check` (which asks the bank)
   * every `poll_ms` until it answers `approved` (resolves), or the request's deadline
   * (`assist_timeout_seconds`) or the bank's own expiry ends it (throws the engine's error: let it
   * pass, as with `requestCode`). Errors thrown by `check` end the request and propagate.
   */
  requestApproval(
    request: ApprovalRequest,
    check: () => Promise<ApprovalStatus>,
    options?: ApprovalOptions,
  ): Promise<void>;
  readonly trust: TrustStore;
  /** Aborted when the session is cancelled, times out or the process shuts down; its reason is an engine stop. */
  readonly signal: AbortSignal;
  readonly log: ConnectorLogger;
  /** Records a named stage of the login (shown on the session for failure diagnostics). */
  stage(name: string): void;
}

/** An open bank login: the engine reads it, then closes it (or, for persistent sessions, keeps it). */
export interface BankSession {
  bankAccounts(): Promise<BankAccount[]>;
  balances(): Promise<Balance[]>;
  identity(): Promise<Identity>;
  movements(range: DateRange): Promise<Movement[]>;
  /**
   * Persistent sessions only (`session_type: persistent`): keeps the bank session alive between scrapes.
   * `true`: still logged in; `false` or a throw: the session is over (closed; the next scrape logs in).
   * Without it, a persistent session is reused until a data call fails.
   */
  keepAlive?(): Promise<boolean>;
  /** Logs out; called once when the engine is done with the session. Errors are ignored. */
  close(): Promise<void>;
}

/** Limits a bank imposes on logins, enforced across every worker process (combined with OTPILOT_BANK_CONCURRENCY). */
export interface ConnectorLimits {
  /** Logins running against this bank at once, at most [unlimited]; the lower of this and OTPILOT_BANK_CONCURRENCY wins. */
  max_concurrent_logins?: number;
  /** Least time between the starts of two logins to this bank, seconds [0]. */
  min_login_spacing_seconds?: number;
}

/** A bank connector. `K`: its credential keys. */
export interface Connector<K extends string = string> {
  /** Also the bank's id in `GET /v1/banks`: lowercase letters, digits, `_` and `-`, at most 64. */
  id: string;
  /** Shown to people. */
  name: string;
  /** The connector's own version (semver recommended), shown in `GET /v1/banks` and `otpilot connectors list`. */
  version: string;
  /** The credentials an account of this bank must supply, exactly these keys. */
  credential_fields: readonly FieldSpec<K>[];
  /** Optional limits the engine honours for this bank. */
  limits?: ConnectorLimits;
  /** Logs in (pausing for codes or approvals through `ctx`) and returns the open session. */
  login(ctx: LoginContext<K>): Promise<BankSession>;
}

/**
 * Returns the connector as given, typing `ctx.credentials` by the names in `credential_fields`
 * (`ctx.credentials.username` checks; a misspelt key does not compile).
 */
export function defineConnector<const K extends string>(connector: Connector<K>): Connector<K> {
  return connector;
}

// ---- errors -----------------------------------------------------------------------------------------------------

/** Typed connector failures (docs/connectors.md "Errors"). */
export type ConnectorErrorKind =
  | 'invalid_credentials'
  | 'account_locked'
  | 'code_rejected'
  | 'bank_unavailable'
  | 'connector_broken';

export const CONNECTOR_ERROR_KINDS: readonly ConnectorErrorKind[] = [
  'invalid_credentials',
  'account_locked',
  'code_rejected',
  'bank_unavailable',
  'connector_broken',
];

/** A bank failure. Any thrown object with a `kind` among the five is treated the same (no import needed). */
export class ConnectorError extends Error {
  readonly kind: ConnectorErrorKind;
  constructor(kind: ConnectorErrorKind, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ConnectorError';
    this.kind = kind;
  }
}

/** True for a `ConnectorError` or any object shaped like one (`{ kind: 'bank_unavailable', message: '…' }`). */
export function isConnectorError(error: unknown): error is { kind: ConnectorErrorKind; message?: unknown } {
  if (typeof error !== 'object' || error === null) return false;
  const kind = (error as { kind?: unknown }).kind;
  return typeof kind === 'string' && (CONNECTOR_ERROR_KINDS as readonly string[]).includes(kind);
}

/** The mark the engine puts on its own stops (a symbol shared across copies of the SDK). */
export const ENGINE_STOP: unique symbol = Symbol.for('otpilot.engine_stop') as never;

/**
 * True when `error` is the engine stopping the login (a code request that expired or ran out of
 * attempts, a cancelled session, a time limit, shutdown), as opposed to a bank error. Rethrow such
 * errors unchanged: the engine records the right outcome itself.
 */
export function isEngineStop(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { [ENGINE_STOP]?: unknown })[ENGINE_STOP] === true;
}
