import type { Generated } from 'kysely';
import type { EventType } from '../core/events.js';
import type { AssistanceState, CodeVia, FailureCategory, SessionState, SessionTrigger } from '../core/states.js';
import type { BankScriptPinsTable, BankScriptsTable, BrowserRunsTable } from './schema-browser.js';
import type {
  ActorType,
  AppTokensTable,
  ConnectSessionsTable,
  ExpectedPaymentsTable,
  HeldSmsTable,
  PaymentCandidatesTable,
  ReauthTokensTable,
  ReconcileAccountsTable,
  ReconcileInboxTable,
  ReconcileOrgSettingsTable,
  ReconnectsTable,
  RelaysTable,
  ResultsTable,
} from './schema-integrations.js';
import type {
  DeliveriesTable,
  DeliveryAttemptsTable,
  DeliveryStatus,
  WebhookEndpointsTable,
} from './schema-webhooks.js';

/*
 * Typed rows. Portable across SQLite and PostgreSQL by construction: ids are text, timestamps are
 * integer epoch milliseconds (`*_at`), booleans are 0/1 integers, JSON is text, amounts are decimal
 * text. Secrets live only in `*_enc` columns (AES-256-GCM envelopes, see security/cipher.ts).
 */

/** The SQL dialect a store speaks. */
export type Dialect = 'sqlite' | 'postgres';

export interface OrganizationsTable {
  id: string;
  name: string;
  created_at: number;
}

export interface UsersTable {
  id: string;
  org_id: string;
  email: string;
  password_hash: string | null;
  role: 'admin' | 'operator' | 'viewer';
  created_at: number;
  updated_at: number;
  /** Encrypted TOTP secret (context `usr_…:totp`); pending until totp_enabled_at is set. */
  totp_secret_enc: string | null;
  totp_enabled_at: number | null;
  /** Last accepted time step (replay protection). */
  totp_last_step: number | null;
  /** JSON array of SHA-256 hashes of unused backup codes. */
  backup_codes: string | null;
}

export interface ApiKeysTable {
  id: string;
  org_id: string;
  name: string;
  /** The 8 public characters of `otpk_<prefix>_<secret>`; unique, used for lookup. */
  prefix: string;
  /** SHA-256 of the secret part (hex). */
  secret_hash: string;
  /** JSON array of scopes. */
  scopes: string;
  /** JSON array of account ids, or null for every account of the organization. */
  account_ids: string | null;
  created_by: string | null;
  created_at: number;
  last_used_at: number | null;
  revoked_at: number | null;
}

export interface BanksTable {
  id: string;
  name: string;
  connector: string;
  country: string | null;
  script_version: string;
  /** JSON array of FieldSpec. */
  credential_fields: string;
  created_at: number;
  /** When a worker last claimed a login to this bank (connectors' `min_login_spacing_seconds`). */
  last_login_at: number | null;
}

export interface AccountsTable {
  id: string;
  org_id: string;
  bank_id: string;
  name: string;
  credentials_enc: string | null;
  trust_enc: string | null;
  /** JSON Identity from the last successful login. */
  identity: string | null;
  blocked_at: number | null;
  blocked_reason: string | null;
  consecutive_failures: number;
  last_success_at: number | null;
  last_run_at: number | null;
  next_run_at: number | null;
  /** Scheduled runs are spaced out by 2^level after prompts nobody answered (0: normal). */
  backoff_level: number;
  /** When the bank stops honouring the stored trust token, as the connector reported it (null: unknown). */
  trust_expires_at: number | null;
  /** When `trust_expiring` was emitted for the current token (null: not yet; reset by a new token). */
  trust_warned_at: number | null;
  /** The last login the bank still challenged although trust was stored (null: none since the trust was set). */
  trust_challenged_at: number | null;
  /** The worker holding this account's open bank session (persistent sessions), or null. */
  live_session_owner: string | null;
  /** When the held bank session logged in. */
  live_session_since: number | null;
  /** The holder's claim lapses after this unless renewed (like a lease). */
  live_session_until: number | null;
  created_at: number;
  updated_at: number;
}

export interface AccountConfigTable {
  account_id: string;
  org_id: string;
  session_type: 'one-shot' | 'persistent';
  login_mode: 'simple' | 'assisted';
  schedule: string | null;
  assist_timeout_seconds: number;
  fatal_threshold: number;
  otp_phone: string | null;
  totp_secret_enc: string | null;
  notification_endpoint_url: string | null;
  notification_auth_type: 'bearer' | 'api_key' | null;
  notification_auth_token_enc: string | null;
  /** JSON array of event types, or null for all. */
  notification_events: string | null;
  webhook_url: string | null;
  webhook_auth_type: 'bearer' | 'api_key' | null;
  webhook_auth_token_enc: string | null;
  /** JSON object. */
  webhook_extra_fields: string | null;
  silent_ingestion: number;
  /** Ask the bank for a new code after this many seconds without one (null: never). */
  resend_after_seconds: number | null;
  /** At most this many resends per request [2]. */
  max_resends: number;
  /** JSON QuietHours: no scheduled login starts inside this window. */
  quiet_hours: string | null;
  /** `whsec_…` secret that signs this account's own notification and result webhooks (encrypted). */
  signing_secret_enc: string | null;
  /** Relayed SMS count for this account only when they come from this sender (null: any sender). */
  sms_sender: string | null;
  /** Regular expression whose first group (or whole match) is the code in a relayed SMS. */
  sms_code_pattern: string | null;
  /** A login that needs a code nobody can give: wait for the deadline anyway, or fail at once. */
  on_no_code_source: 'wait' | 'fail';
  /** Persistent sessions: seconds between two keepAlive calls [300]. */
  keep_alive_seconds: number;
  updated_at: number;
}

export interface SessionsTable {
  id: string;
  org_id: string;
  account_id: string;
  state: SessionState;
  trigger: SessionTrigger;
  failure_category: FailureCategory | null;
  failure_message: string | null;
  /** JSON array of { name, at }. */
  stages: string;
  lease_owner: string | null;
  lease_expires_at: number | null;
  cancel_requested_at: number | null;
  movements_new: number;
  queued_at: number;
  started_at: number | null;
  finished_at: number | null;
}

export interface AssistanceRequestsTable {
  id: string;
  org_id: string;
  account_id: string;
  session_id: string;
  /** `otp`: a code is needed; `approval`: the bank waits for the user to approve in its app. */
  type: 'otp' | 'approval';
  state: AssistanceState;
  /** JSON CodeDescriptor (`otp`) or ApprovalDescriptor (`approval`). */
  descriptor: string;
  attempts: number;
  max_attempts: number;
  /** New codes the bank was asked to send for this request. */
  resends: number;
  last_error: string | null;
  /** The submitted code, encrypted, until the worker takes it (then wiped). */
  code_enc: string | null;
  /** Set while a code is with the bank (submitted, not judged yet): the in-flight guard. */
  code_submitted_at: number | null;
  code_via: CodeVia | null;
  created_at: number;
  expires_at: number;
  resolved_at: number | null;
  resolution_via: string | null;
  resolution_reason: string | null;
  /** The submission whose code is stored or with the bank (null when none is). */
  submission_id: string | null;
}

/** One key's count in its current window (security/rate-limits.ts). */
export interface RateLimitsTable {
  key: string;
  /** When the window began (the first hit after the last window ended), ms. */
  window_start: number;
  hits: number;
}

/** What became of one submitted code. */
export type SubmissionVerdict = 'pending' | 'accepted' | 'rejected' | 'withdrawn';

export interface CodeSubmissionsTable {
  id: string;
  org_id: string;
  account_id: string;
  request_id: string;
  via: CodeVia;
  actor_type: ActorType;
  actor_id: string | null;
  /** `pending` until the bank judged the code; `withdrawn`: the request closed before it could. */
  verdict: SubmissionVerdict;
  submitted_at: number;
  judged_at: number | null;
}

export interface BankAccountsTable {
  id: string;
  org_id: string;
  account_id: string;
  external_id: string;
  name: string;
  iban: string | null;
  number: string | null;
  currency: string;
  type: string;
  balance_current: string | null;
  balance_available: string | null;
  balance_as_of: string | null;
  created_at: number;
  updated_at: number;
}

export interface MovementsTable {
  id: string;
  org_id: string;
  account_id: string;
  bank_account_id: string;
  /** Stable per-account key: the bank's id, or a hash of the movement's fields. */
  dedup_key: string;
  external_id: string | null;
  booked_at: string;
  amount: string;
  currency: string;
  name: string;
  reference: string | null;
  session_id: string | null;
  created_at: number;
}

export interface AuditLogTable {
  id: string;
  org_id: string;
  actor_type: ActorType;
  actor_id: string | null;
  action: string;
  account_id: string | null;
  target_id: string | null;
  outcome: string | null;
  /** JSON object; never holds secrets or codes. */
  details: string | null;
  created_at: number;
}

export interface EventsTable {
  /** Delivery order (SSE `Last-Event-ID`, webhook ordering). */
  seq: Generated<number>;
  id: string;
  org_id: string;
  account_id: string | null;
  type: EventType;
  status: string;
  /** JSON; `''` when `movement_id` is set (the payload is that movement, read at delivery). */
  data: string;
  occurred_at: number;
  /** The movement a compact `bank_movement` / `payment_received` event carries (since migration 0018); null otherwise. */
  movement_id: string | null;
}

export interface UserSessionsTable {
  id: string;
  user_id: string;
  org_id: string;
  /** SHA-256 of the session token (hex). */
  token_hash: string;
  user_agent: string | null;
  created_at: number;
  last_seen_at: number;
  /** Absolute end: 7 days after sign-in. */
  expires_at: number;
  revoked_at: number | null;
}

export interface SettingsTable {
  key: string;
  value: string;
}

export type {
  AppTokensTable,
  ConnectSessionsTable,
  DataKind,
  ExpectedPaymentsTable,
  HeldSmsTable,
  PaymentCandidatesTable,
  ReauthTokensTable,
  ReconcileAccountsTable,
  ReconcileInboxTable,
  ReconcileOrgSettingsTable,
  ReconnectsTable,
  RelaysTable,
  ResultStatus,
  ResultsTable,
} from './schema-integrations.js';

export type { DeliveriesTable, DeliveryAttemptsTable, DeliveryStatus, WebhookEndpointsTable };

export interface Database {
  organizations: OrganizationsTable;
  users: UsersTable;
  api_keys: ApiKeysTable;
  banks: BanksTable;
  accounts: AccountsTable;
  account_config: AccountConfigTable;
  sessions: SessionsTable;
  assistance_requests: AssistanceRequestsTable;
  code_submissions: CodeSubmissionsTable;
  rate_limits: RateLimitsTable;
  bank_accounts: BankAccountsTable;
  movements: MovementsTable;
  audit_log: AuditLogTable;
  events: EventsTable;
  settings: SettingsTable;
  webhook_endpoints: WebhookEndpointsTable;
  deliveries: DeliveriesTable;
  delivery_attempts: DeliveryAttemptsTable;
  user_sessions: UserSessionsTable;
  relays: RelaysTable;
  held_sms: HeldSmsTable;
  reauth_tokens: ReauthTokensTable;
  connect_sessions: ConnectSessionsTable;
  results: ResultsTable;
  reconnects: ReconnectsTable;
  app_tokens: AppTokensTable;
  expected_payments: ExpectedPaymentsTable;
  payment_candidates: PaymentCandidatesTable;
  reconcile_inbox: ReconcileInboxTable;
  reconcile_org_settings: ReconcileOrgSettingsTable;
  reconcile_accounts: ReconcileAccountsTable;
  bank_scripts: BankScriptsTable;
  bank_script_pins: BankScriptPinsTable;
  browser_runs: BrowserRunsTable;
}
