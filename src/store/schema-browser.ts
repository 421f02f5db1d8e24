/*
 * The tables of browser-script connectors (docs/browser-scripts.md): versioned bank scripts, per-account
 * pins, and what each browser login ran and left behind when it failed.
 */

/** A bank script's life: written, looked at, the one in use, retired. */
export type ScriptState = 'draft' | 'review' | 'active' | 'deprecated';

/** One version of a bank's script; at most one `active` per bank (a partial unique index). */
export interface BankScriptsTable {
  id: string;
  bank_id: string;
  /** Semantic version, unique per bank. */
  version: string;
  state: ScriptState;
  /** The JavaScript module's text. */
  source: string;
  /** SHA-256 of the source, hex. */
  sha256: string;
  /** JSON array of FieldSpec, as the script declares them. */
  credential_fields: string;
  created_at: number;
  updated_at: number;
}

/** An account that runs one named version of its bank's script instead of the active one. */
export interface BankScriptPinsTable {
  account_id: string;
  bank_id: string;
  version: string;
  created_at: number;
}

/** One browser login: the script version it ran and, when it failed, its evidence (secrets redacted). */
export interface BrowserRunsTable {
  session_id: string;
  org_id: string;
  account_id: string;
  bank_id: string;
  script_version: string;
  created_at: number;
  /** Set when the login failed and evidence was kept. */
  failed_at: number | null;
  error: string | null;
  url: string | null;
  /** The page's HTML with every input's value masked. */
  html: string | null;
  /** PNG, base64. */
  screenshot: string | null;
  /** JSON array of strings. */
  console_errors: string | null;
}
