/** The dashboard's view of the server: the same-origin dashboard API (paths without /v1), cookie-authenticated. */

// Types only (erased at build): the dashboard bundles none of the server's code.
import type { Static } from 'typebox';
import type { AccountSchema, AccountStatusSchema, BankSchema, ConfigSchema } from '../accounts/schemas.js';
import type { EntrySchema } from '../audit/schemas.js';
import type { RoleSchema, TwoFactorStatusSchema, UserSchema } from '../auth/schemas.js';
import type { EvidenceSchema } from '../browser/schemas.js';
import type { KeySchema } from '../keys/schemas.js';
import type { MovementSchema } from '../movements/schemas.js';
import type { SessionSchema } from '../sessions/schemas.js';
import type { DeliverySchema, EndpointSchema } from '../webhooks/schemas.js';

export interface ErrorDetail {
  path: string;
  message: string;
}

/** A refusal in the documented error shape (docs/api.md "Errors"), or a network fault (status 0). */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: ErrorDetail[] = [],
  ) {
    super(message);
  }
}

/** Fired when the server says the session is gone, so the app can show the sign-in page. */
export const SIGNED_OUT = 'otpilot:signed-out';

export async function api<T>(
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE',
  path: string,
  body?: unknown,
): Promise<T> {
  let response: Response;
  try {
    response = await fetch(path, {
      method,
      credentials: 'same-origin',
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? null : JSON.stringify(body),
    });
  } catch {
    throw new HttpError(0, 'NETWORK', 'The server cannot be reached. Check your connection; we keep trying.');
  }
  if (response.status === 204) return undefined as T;
  const payload = (await response.json().catch(() => null)) as {
    error?: { code: string; message: string; details?: ErrorDetail[] };
  } | null;
  if (!response.ok) {
    const error = payload?.error;
    if (response.status === 401 && !path.startsWith('/auth/')) window.dispatchEvent(new Event(SIGNED_OUT));
    throw new HttpError(
      response.status,
      error?.code ?? 'INTERNAL',
      error?.message ?? `The server answered ${response.status}.`,
      error?.details ?? [],
    );
  }
  return payload as T;
}

export const get = <T>(path: string) => api<T>('GET', path);

/** A message for people, with the field details when the server gave some. */
export function describe(error: unknown): string {
  if (!(error instanceof HttpError)) return 'Something went wrong. Try again.';
  const details = error.details.map((d) => `${d.path.replace(/^\//, '') || 'body'}: ${d.message}`);
  return details.length > 0 ? `${error.message} (${details.join('; ')})` : error.message;
}

// The server's objects, typed from the same schemas the server validates and documents with.
export type Role = Static<typeof RoleSchema>;
export type User = Static<typeof UserSchema>;
export interface Descriptor {
  length: number | null;
  type: 'numeric' | 'alphanumeric';
  purpose: string;
  prompt: string | null;
  channel?: 'sms' | 'authenticator' | null;
}
export interface AssistanceRequest {
  id: string;
  account_id: string;
  session_id: string;
  /** `otp`: a code to type; `approval`: the account holder approves in the bank's app (nothing to type). */
  type: 'otp' | 'approval';
  state: 'pending' | 'fulfilled' | 'cancelled' | 'expired';
  descriptor: Descriptor;
  attempts: number;
  max_attempts: number;
  last_error: string | null;
  created_at: string;
  expires_at: string;
  resolved_at: string | null;
}
export type AccountStatus = Static<typeof AccountStatusSchema>;
export type Account = Static<typeof AccountSchema>;
export type AccountConfig = Static<typeof ConfigSchema>;
export type Bank = Static<typeof BankSchema>;
export type Session = Static<typeof SessionSchema>;
export type BrowserRun = Static<typeof EvidenceSchema>;
export type Movement = Static<typeof MovementSchema>;
export type ApiKey = Static<typeof KeySchema>;
export type TwoFactorStatus = Static<typeof TwoFactorStatusSchema>;
export type AuditEntry = Static<typeof EntrySchema>;
export type WebhookEndpoint = Static<typeof EndpointSchema>;
export type WebhookDelivery = Static<typeof DeliverySchema>;
export interface List<T> {
  data: T[];
  next_cursor?: string | null;
}
/** `/insights/…` (src/insights): the figures behind the pictures. */
export interface DayHealth {
  date: string;
  succeeded: number;
  failed: number;
  waited: number;
}
export interface RunHealth {
  session_id: string;
  at: string;
  state: string;
  failure_category: string | null;
  waited_ms: number | null;
}
export interface BankAccountBalance {
  id: string;
  name: string;
  iban: string | null;
  currency: string;
  type: string;
  balance_current: string | null;
  balance_available: string | null;
  balance_as_of: string | null;
  history: { date: string; balance: string }[];
}
export type Verdict = 'pending' | 'accepted' | 'rejected' | 'expired' | 'withdrawn';
export interface CodeRow {
  id: string;
  account_id: string;
  type: 'otp' | 'approval';
  source: string | null;
  verdict: Verdict;
  created_at: string;
  resolved_at: string | null;
  time_to_code_ms: number | null;
  answered_by: { type: 'user' | 'api_key' | 'app_token' | 'system'; id: string | null; label: string | null } | null;
}
export interface MedianGroup {
  key: string;
  label: string | null;
  median_ms: number;
  count: number;
}
