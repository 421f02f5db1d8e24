/** The dashboard's view of the server: the same-origin dashboard API (paths without /v1), cookie-authenticated. */

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

// The server's objects, as the dashboard uses them (see the OpenAPI document at /openapi.json).
export type Role = 'admin' | 'operator' | 'viewer';
export interface User {
  id: string;
  email: string;
  role: Role;
  created_at: string;
}
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
export type AccountStatus = 'idle' | 'queued' | 'running' | 'awaiting_assistance' | 'blocked';
export interface Account {
  id: string;
  bank_id: string;
  name: string;
  status: AccountStatus;
  blocked_at: string | null;
  blocked_reason: string | null;
  consecutive_failures: number;
  has_credentials: boolean;
  last_success_at: string | null;
  last_run_at: string | null;
  next_run_at: string | null;
  /** When the bank stops skipping the code for this login (a stored trust token), if known. */
  trust_expires_at?: string | null;
  created_at: string;
}
export interface Bank {
  id: string;
  name: string;
  connector: string;
  credential_fields: { name: string; label: string; type: 'text' | 'password'; required: boolean }[];
}
export interface Session {
  id: string;
  state: string;
  trigger: string;
  failure_category: string | null;
  failure_message: string | null;
  stages: { name: string; at: string }[];
  movements_new: number;
  queued_at: string;
  started_at: string | null;
  finished_at: string | null;
}
export interface Movement {
  id: string;
  bank_account_id: string;
  booked_at: string;
  amount: string;
  currency: string;
  name: string;
  reference: string | null;
}
export interface List<T> {
  data: T[];
  next_cursor?: string | null;
}
