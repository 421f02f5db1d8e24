/** Who did something (users, API keys, app tokens, otpilot itself). */
export type ActorType = 'user' | 'api_key' | 'app_token' | 'system';

/*
 * The tables of the integrations around the core (SMS relays, reauthorisation, the data API and its
 * reconnects, app tokens, reconciliation); schema.ts holds the core's and the `Database` of all.
 */

/** An SMS provider integration; relayed SMS are routed to accounts of its organization. */
export interface RelaysTable {
  id: string;
  org_id: string;
  provider: 'twilio' | 'json';
  /** The provider's auth token that signs its requests (Twilio), encrypted. */
  auth_token_enc: string | null;
  created_at: number;
}

/** A relayed SMS that arrived before any request waited for it, kept for a short window. */
export interface HeldSmsTable {
  id: string;
  org_id: string;
  /** The receiving number, E.164. */
  to_phone: string;
  relay_id: string | null;
  /** Who relayed it (the audit actor when it is used). */
  actor_type: ActorType;
  actor_id: string | null;
  /** JSON array of account ids the relaying key may reach, or null for every account. */
  account_ids: string | null;
  /** `{ from, body }`, encrypted: SMS bodies are secrets. */
  message_enc: string;
  received_at: number;
  expires_at: number;
}

/** A single-use reauthorisation token (10 minutes), known only by its hash. */
export interface ReauthTokensTable {
  /** SHA-256 of the token (hex); the primary key. */
  token_hash: string;
  org_id: string;
  account_id: string;
  /** Who asked for it (the audit actor of what it starts). */
  actor_type: ActorType;
  actor_id: string | null;
  created_at: number;
  expires_at: number;
  /** Set by the compare-and-set that spends it. */
  used_at: number | null;
  connect_session_id: string | null;
}

/** A Mono-style connect session: the logins of one reauthorisation, followed by commits. */
export interface ConnectSessionsTable {
  /** `ses_…` of its own (a password commit moves it to another login). */
  id: string;
  org_id: string;
  account_id: string;
  /** The login it currently follows. */
  session_id: string;
  actor_type: ActorType;
  actor_id: string | null;
  created_at: number;
  expires_at: number;
  /** When `account_reauthorized` was emitted (once). */
  reauthorized_at: number | null;
}

/** Data API answer statuses (docs/api.md "Data API, results and reconnects"). */
export type ResultStatus = 'OK' | 'PENDING' | 'RECONNECT_REQUIRED' | 'FAILED';
export type DataKind = 'identity' | 'bank_accounts' | 'balances' | 'transactions';

export interface ResultsTable {
  id: string;
  org_id: string;
  account_id: string;
  kind: DataKind;
  /** JSON: the query (from, to, bank_account_id, limit, cursor). */
  params: string;
  status: ResultStatus;
  /** JSON, once known. */
  payload: string | null;
  message: string | null;
  /** The live login that will answer it (null when answered from stored data). */
  session_id: string | null;
  reconnect_id: string | null;
  created_at: number;
  updated_at: number;
  /** Readable until then (30 days), `GONE` after. */
  expires_at: number;
}

export interface ReconnectsTable {
  id: string;
  org_id: string;
  account_id: string;
  /** The login the owner's code goes to; replaced when a fresh login starts. */
  session_id: string;
  state: 'pending' | 'completed';
  created_at: number;
  expires_at: number;
  completed_at: number | null;
}

export interface AppTokensTable {
  id: string;
  org_id: string;
  name: string;
  /** Publishable (`otpa_…`): it only opens reconnects, so it is stored as is and shown again. */
  token: string;
  /** JSON array of origins (`https://app.example.com`) the widget may be used from. */
  allowed_origins: string;
  created_at: number;
  revoked_at: number | null;
}

/** An expected payment (reconciliation). Amounts are exact: a decimal string and integer minor units. */
export interface ExpectedPaymentsTable {
  id: string;
  org_id: string;
  /** null: any account of the organization. */
  account_id: string | null;
  external_id: string;
  amount: string;
  amount_minor: number;
  currency: string;
  payer_name: string;
  reference: string | null;
  /** YYYY-MM-DD or null. */
  expected_date: string | null;
  expires_at: number;
  /** JSON object. */
  metadata: string;
  state: string;
  source: string;
  movement_id: string | null;
  score: number | null;
  /** JSON array of strings. */
  reasons: string | null;
  matched_at: number | null;
  matched_by: string | null;
  cancel_reason: string | null;
  created_at: number;
  updated_at: number;
}

export interface PaymentCandidatesTable {
  payment_id: string;
  movement_id: string;
  score: number;
  /** JSON array of strings. */
  reasons: string;
}

export interface ReconcileInboxTable {
  movement_id: string;
  created_at: number;
}

export interface ReconcileOrgSettingsTable {
  org_id: string;
  window_days_before: number;
  window_days_after: number | null;
  updated_at: number;
}

export interface ReconcileAccountsTable {
  account_id: string;
  org_id: string;
  mode: string;
  source_url: string | null;
  poll_seconds: number;
  polled_at: number | null;
  poll_error: string | null;
  updated_at: number;
}
