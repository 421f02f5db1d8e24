import type { Static } from 'typebox';
import { parseTotpSecret } from '../automation/totp.js';
import type { FieldSpec } from '../connectors/sdk.js';
import type { ErrorDetail } from '../core/errors.js';
import { EVENT_TYPES, type EventType } from '../core/events.js';
import { toE164 } from '../core/phone.js';
import { checkQuietHours, type QuietHours } from '../core/quiet-hours.js';
import { parseSchedule } from '../core/schedule.js';
import type { Cipher } from '../security/cipher.js';
import type { AccountConfigTable } from '../store/schema.js';
import type { ConfigInputSchema, ConfigSchema } from './schemas.js';

/** The masked value shown for every write-only secret that is set. */
export const MASK = '********';

/** Envelope keys a `webhook_extra_fields` entry may not override. */
export const RESERVED_WEBHOOK_FIELDS = ['id', 'type', 'status', 'account_id', 'data', 'occurred_at'] as const;

/** Account config as written (PUT); every field optional, `null` clears, write-only secrets included. */
export type ConfigInput = Static<typeof ConfigInputSchema>;

/** Account config as read: secrets replaced by MASK (or null when unset). */
export type ConfigView = Static<typeof ConfigSchema>;

/** See `on_no_code_source` (automation/code-sources.ts says what counts as a source). */
export type NoCodeSource = 'wait' | 'fail';

/** Defaults of a new account: assisted logins, no schedule (manual scrapes only), 5 minutes for a code. */
export const DEFAULT_CONFIG = {
  session_type: 'one-shot',
  login_mode: 'assisted',
  schedule: null,
  assist_timeout_seconds: 300,
  fatal_threshold: 3,
} as const;

export function configView(row: AccountConfigTable, credentialFieldNames: string[] | null): ConfigView {
  const mask = (value: string | null) => (value === null ? null : MASK);
  return {
    session_type: row.session_type,
    login_mode: row.login_mode,
    schedule: row.schedule,
    assist_timeout_seconds: row.assist_timeout_seconds,
    fatal_threshold: row.fatal_threshold,
    credentials: credentialFieldNames ? Object.fromEntries(credentialFieldNames.map((name) => [name, MASK])) : null,
    otp_phone: row.otp_phone,
    totp_secret: mask(row.totp_secret_enc),
    notification_endpoint_url: row.notification_endpoint_url,
    notification_auth_type: row.notification_auth_type,
    notification_auth_token: mask(row.notification_auth_token_enc),
    notification_events: row.notification_events ? (JSON.parse(row.notification_events) as EventType[]) : null,
    webhook_url: row.webhook_url,
    webhook_auth_type: row.webhook_auth_type,
    webhook_auth_token: mask(row.webhook_auth_token_enc),
    webhook_extra_fields: row.webhook_extra_fields
      ? (JSON.parse(row.webhook_extra_fields) as Record<string, string | number | boolean>)
      : null,
    silent_ingestion: row.silent_ingestion === 1,
    quiet_hours: row.quiet_hours ? (JSON.parse(row.quiet_hours) as QuietHours) : null,
    resend_after_seconds: row.resend_after_seconds,
    max_resends: row.max_resends,
    keep_alive_seconds: row.keep_alive_seconds,
    sms_sender: row.sms_sender,
    sms_code_pattern: row.sms_code_pattern,
    on_no_code_source: row.on_no_code_source,
  };
}

export type CredentialsCheck = { ok: true } | { ok: false; details: ErrorDetail[] };

export function checkCredentials(
  fields: FieldSpec[],
  credentials: Record<string, string>,
  path: string,
): CredentialsCheck {
  const details: ErrorDetail[] = [];
  const known = new Set(fields.map((f) => f.name));
  for (const name of Object.keys(credentials)) {
    if (!known.has(name)) details.push({ path: `${path}/${name}`, message: 'is not a credential field of this bank' });
  }
  for (const field of fields) {
    const value = credentials[field.name];
    if (field.required && !value) details.push({ path: `${path}/${field.name}`, message: 'is required' });
    else if (value && field.pattern && !new RegExp(field.pattern).test(value))
      details.push({ path: `${path}/${field.name}`, message: field.hint ?? 'has the wrong format' });
  }
  return details.length > 0 ? { ok: false, details } : { ok: true };
}

/** A code pattern must compile and must not match the empty string (it would find "codes" everywhere). */
function checkPattern(pattern: string): string | null {
  let compiled: RegExp;
  try {
    compiled = new RegExp(pattern);
  } catch {
    return 'must be a valid regular expression';
  }
  if (compiled.test('')) return 'must not match an empty text';
  return null;
}

function checkUrl(value: string): string | null {
  try {
    const url = new URL(value);
    return url.protocol === 'http:' || url.protocol === 'https:' ? null : 'must be an http(s) URL';
  } catch {
    return 'must be an absolute URL';
  }
}

export type ConfigApply =
  | {
      ok: true;
      /** Columns to write (secrets already encrypted). */
      update: Partial<AccountConfigTable>;
      /** Present when credentials change: the new envelope, or null to clear. */
      credentialsEnc?: string | null;
      scheduleChanged: boolean;
      /** Names of the changed fields, for the audit log (never their values). */
      changed: string[];
    }
  | { ok: false; details: ErrorDetail[] };

/**
 * Validates a config write and turns it into column updates. Field types were checked by the route
 * schema; this checks meaning (schedule syntax, URLs, reserved keys, credential fields) and encrypts.
 */
export function applyConfig(
  input: ConfigInput,
  ctx: { accountId: string; fields: FieldSpec[]; cipher: Cipher },
): ConfigApply {
  const details: ErrorDetail[] = [];
  const update: Partial<AccountConfigTable> = {};
  const changed = Object.keys(input);
  const secret = (value: string | null | undefined, field: string) =>
    value === null || value === undefined ? null : ctx.cipher.encrypt(value, `${ctx.accountId}:${field}`);

  if (input.session_type !== undefined) update.session_type = input.session_type;
  if (input.login_mode !== undefined) update.login_mode = input.login_mode;
  if (input.assist_timeout_seconds !== undefined) update.assist_timeout_seconds = input.assist_timeout_seconds;
  if (input.fatal_threshold !== undefined) update.fatal_threshold = input.fatal_threshold;
  if (input.silent_ingestion !== undefined) update.silent_ingestion = input.silent_ingestion ? 1 : 0;
  if (input.resend_after_seconds !== undefined) update.resend_after_seconds = input.resend_after_seconds;
  if (input.max_resends !== undefined) update.max_resends = input.max_resends;
  if (input.keep_alive_seconds !== undefined) update.keep_alive_seconds = input.keep_alive_seconds;
  if (input.quiet_hours !== undefined) {
    const checked = input.quiet_hours === null ? null : checkQuietHours(input.quiet_hours);
    if (checked && !checked.ok) details.push({ path: '/quiet_hours', message: checked.reason });
    else update.quiet_hours = input.quiet_hours ? JSON.stringify(input.quiet_hours) : null;
  }
  if (input.schedule !== undefined) {
    if (input.schedule === null || input.schedule.trim() === '') update.schedule = null;
    else {
      const parsed = parseSchedule(input.schedule);
      if (parsed.ok) update.schedule = input.schedule.trim();
      else details.push({ path: '/schedule', message: parsed.reason });
    }
  }
  if (input.otp_phone !== undefined) {
    // Stored in E.164, the form relayed SMS are routed by.
    const phone = input.otp_phone === null ? null : toE164(input.otp_phone);
    if (input.otp_phone !== null && phone === null) {
      details.push({
        path: '/otp_phone',
        message: 'must be an international phone number with its country code, like +31612345678',
      });
    } else update.otp_phone = phone;
  }
  if (input.sms_sender !== undefined) {
    const sender = input.sms_sender?.trim() || null;
    update.sms_sender = sender;
  }
  if (input.sms_code_pattern !== undefined) {
    const problem = input.sms_code_pattern === null ? null : checkPattern(input.sms_code_pattern);
    if (problem) details.push({ path: '/sms_code_pattern', message: problem });
    else update.sms_code_pattern = input.sms_code_pattern;
  }
  if (input.on_no_code_source !== undefined) update.on_no_code_source = input.on_no_code_source;
  if (input.totp_secret !== undefined) {
    const parsed = input.totp_secret === null ? null : parseTotpSecret(input.totp_secret);
    if (parsed && !parsed.ok) details.push({ path: '/totp_secret', message: parsed.reason });
    else update.totp_secret_enc = secret(input.totp_secret, 'totp_secret');
  }
  for (const key of ['notification_endpoint_url', 'webhook_url'] as const) {
    const value = input[key];
    if (value === undefined) continue;
    const problem = value === null ? null : checkUrl(value);
    if (problem) details.push({ path: `/${key}`, message: problem });
    else update[key] = value;
  }
  if (input.notification_auth_type !== undefined) update.notification_auth_type = input.notification_auth_type;
  if (input.webhook_auth_type !== undefined) update.webhook_auth_type = input.webhook_auth_type;
  if (input.notification_auth_token !== undefined)
    update.notification_auth_token_enc = secret(input.notification_auth_token, 'notification_auth_token');
  if (input.webhook_auth_token !== undefined)
    update.webhook_auth_token_enc = secret(input.webhook_auth_token, 'webhook_auth_token');
  if (input.notification_events !== undefined) {
    const unknown = (input.notification_events ?? []).filter((t) => !EVENT_TYPES.includes(t));
    if (unknown.length > 0)
      details.push({ path: '/notification_events', message: `unknown event types: ${unknown.join(', ')}` });
    else update.notification_events = input.notification_events ? JSON.stringify(input.notification_events) : null;
  }
  if (input.webhook_extra_fields !== undefined) {
    const reserved = Object.keys(input.webhook_extra_fields ?? {}).filter((k) =>
      (RESERVED_WEBHOOK_FIELDS as readonly string[]).includes(k),
    );
    if (reserved.length > 0) {
      details.push({
        path: '/webhook_extra_fields',
        message: `may not override reserved keys: ${reserved.join(', ')}`,
      });
    } else update.webhook_extra_fields = input.webhook_extra_fields ? JSON.stringify(input.webhook_extra_fields) : null;
  }
  let credentialsEnc: string | null | undefined;
  if (input.credentials !== undefined) {
    if (input.credentials === null) credentialsEnc = null;
    else {
      const check = checkCredentials(ctx.fields, input.credentials, '/credentials');
      if (check.ok)
        credentialsEnc = ctx.cipher.encrypt(JSON.stringify(input.credentials), `${ctx.accountId}:credentials`);
      else details.push(...check.details);
    }
  }
  if (details.length > 0) return { ok: false, details };
  return {
    ok: true,
    update,
    ...(credentialsEnc !== undefined ? { credentialsEnc } : {}),
    scheduleChanged: input.schedule !== undefined,
    changed,
  };
}
