import type { ApprovalDescriptor, CodeDescriptor } from '../core/descriptor.js';

/** One credential field a bank asks for (shown in forms, validated on account create). */
export interface FieldSpec {
  name: string;
  label: string;
  /** `password` fields are never echoed back. */
  type: 'text' | 'password';
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

/** One ledger inside a bank login. Amounts are decimal strings in the currency's major unit ("-12.34"). */
export interface BankAccount {
  /** The bank's own stable id for this ledger. */
  id: string;
  name: string;
  iban: string | null;
  number: string | null;
  currency: string;
  type: string;
}

export interface Balance {
  bank_account_id: string;
  /** Decimal string, major unit. */
  current: string;
  available: string | null;
  currency: string;
  /** ISO-8601. */
  as_of: string;
}

export interface Identity {
  name: string;
  email: string | null;
  phone: string | null;
}

/** One bank transaction as the connector reads it. */
export interface Movement {
  /** The bank's transaction id when it has one; otherwise the engine derives a stable key. */
  id: string | null;
  bank_account_id: string;
  /** ISO-8601 date or timestamp of booking. */
  booked_at: string;
  /** Decimal string, major unit, negative for debits. */
  amount: string;
  currency: string;
  name: string;
  reference: string | null;
}

/** Inclusive range of ISO dates (YYYY-MM-DD). */
export interface DateRange {
  from: string;
  to: string;
}

/** What the bank said about one code; on acceptance, `value` is what `requestCode` resolves with (a token, a session). */
export type CodeVerdict<T = unknown> = { outcome: 'accepted'; value?: T } | { outcome: 'rejected'; reason?: string };

/** A code request as the connector describes it. `max_attempts` defaults to 3 (and never exceeds it). */
export interface CodeRequest extends CodeDescriptor {
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
 * A refusal or any other end is the connector's to throw (a ConnectorError, `code_rejected`).
 */
export type ApprovalStatus = { outcome: 'approved' } | { outcome: 'pending' } | { outcome: 'expired' };

export interface ApprovalOptions {
  /** How often to call `check`, ms [1000]; kept between 100 and 10 000. */
  pollMs?: number;
}

/** Persisted per-account trust (cookies, device tokens), stored encrypted by the engine. */
export interface TrustStore {
  get(): Promise<string | null>;
  /**
   * Stores (or with null, forgets) the trust. Give `expiresAt` when the bank says how long it honours
   * it: the account shows it (`trust_expires_at`) and a `trust_expiring` event warns ahead of it.
   */
  set(value: string | null, options?: { expiresAt?: Date | null }): Promise<void>;
}

export interface ConnectorLogger {
  debug(msg: string, data?: Record<string, unknown>): void;
  info(msg: string, data?: Record<string, unknown>): void;
  warn(msg: string, data?: Record<string, unknown>): void;
}

export interface LoginContext {
  /** Decrypted only in memory, for the duration of this login. */
  readonly credentials: Readonly<Record<string, string>>;
  /**
   * Pauses the login until a code arrives, then calls `tryCode` with it (once per submitted code) and
   * records the verdict: resolves after an `accepted` verdict, with the verdict's `value`; keeps waiting after `rejected` while
   * attempts remain. When the request expires, runs out of attempts or is withdrawn, it throws the
   * engine's own error: let it propagate (do not catch it or wrap it in a ConnectorError). Errors
   * thrown by `tryCode` end the request and propagate.
   */
  requestCode<T = unknown>(
    request: CodeRequest,
    tryCode: (code: string) => Promise<CodeVerdict<T>>,
    options?: CodeRequestOptions,
  ): Promise<T | undefined>;
  /**
   * Pauses the login while the bank waits for the user to approve it in the bank's app: opens an
   * assistance request of type `approval` (it takes no code) and calls `check` (which asks the bank)
   * every `pollMs` until it answers `approved` (resolves), or the request's deadline
   * (`assist_timeout_seconds`) or the bank's own expiry ends it (throws the engine's error: let it
   * pass, as with `requestCode`). Errors thrown by `check` end the request and propagate.
   */
  requestApproval(
    request: ApprovalRequest,
    check: () => Promise<ApprovalStatus>,
    options?: ApprovalOptions,
  ): Promise<void>;
  readonly trust: TrustStore;
  /** Aborted when the session is cancelled or the process shuts down. */
  readonly signal: AbortSignal;
  readonly log: ConnectorLogger;
  /** Records a named stage of the login (shown on the session for failure diagnostics). */
  stage(name: string): void;
}

export interface BankSession {
  bankAccounts(): Promise<BankAccount[]>;
  balances(): Promise<Balance[]>;
  identity(): Promise<Identity>;
  movements(range: DateRange): Promise<Movement[]>;
  keepAlive?(): Promise<boolean>;
  close(): Promise<void>;
}

export interface Connector {
  id: string;
  name: string;
  credentialFields: FieldSpec[];
  login(ctx: LoginContext): Promise<BankSession>;
}

/** Typed connector failures (docs/connectors.md "Errors"). */
export type ConnectorErrorKind =
  | 'invalid_credentials'
  | 'account_locked'
  | 'code_rejected'
  | 'bank_unavailable'
  | 'connector_broken';

export class ConnectorError extends Error {
  readonly kind: ConnectorErrorKind;
  constructor(kind: ConnectorErrorKind, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ConnectorError';
    this.kind = kind;
  }
}
