import { Type } from 'typebox';
import { AssistanceSchema } from '../assistance/schemas.js';
import { EVENT_TYPES } from '../core/events.js';
import { ACCOUNT_STATUSES, SESSION_STATES } from '../core/states.js';
import { Literals, Nullable, Timestamp } from '../http/schemas.js';

/** At least one visible character (names are trimmed before they are stored). */
export const AccountName = Type.String({ minLength: 1, maxLength: 200, pattern: '\\S' });

const AuthType = Nullable(Type.Union([Type.Literal('bearer'), Type.Literal('api_key')]));
const Url = Type.String({ maxLength: 2048 });
// Key bounds go in `propertyNames`: a Record's key schema becomes a pattern and loses its maxLength.
const ExtraFields = Type.Record(
  Type.String(),
  Type.Union([Type.String({ maxLength: 1024 }), Type.Number(), Type.Boolean()]),
  {
    maxProperties: 32,
    propertyNames: { maxLength: 64 },
  },
);
const Credentials = Type.Record(Type.String(), Type.String({ maxLength: 1024 }), {
  maxProperties: 32,
  propertyNames: { maxLength: 64 },
});

const configFields = {
  session_type: Type.Union([Type.Literal('one-shot'), Type.Literal('persistent')]),
  login_mode: Type.Union([Type.Literal('simple'), Type.Literal('assisted')]),
  schedule: Nullable(Type.String({ maxLength: 200, description: 'cron (UTC) or "every 20m"; null: manual only' })),
  assist_timeout_seconds: Type.Integer({ minimum: 1, maximum: 3600, description: 'default 300' }),
  fatal_threshold: Type.Integer({
    minimum: 1,
    maximum: 100,
    description: 'consecutive failures that block; default 3',
  }),
  otp_phone: Nullable(
    Type.String({
      maxLength: 32,
      description: 'international number with its country code; stored in E.164; routes relayed SMS',
    }),
  ),
  sms_sender: Nullable(
    Type.String({
      maxLength: 64,
      description: 'relayed SMS count only when they come from this sender (number or name); null: any',
    }),
  ),
  sms_code_pattern: Nullable(
    Type.String({
      maxLength: 200,
      description: 'regular expression for the code in a relayed SMS: its first group, or the whole match',
    }),
  ),
  on_no_code_source: Type.Union([Type.Literal('wait'), Type.Literal('fail')], {
    description:
      'a login that needs a code when no operator is signed in, no relay serves otp_phone and no TOTP secret fits: wait (default) or fail at once (assistance_unavailable)',
  }),
  notification_endpoint_url: Nullable(Url),
  notification_auth_type: AuthType,
  notification_events: Nullable(Type.Array(Literals(EVENT_TYPES), { maxItems: 32 })),
  webhook_url: Nullable(Url),
  webhook_auth_type: AuthType,
  webhook_extra_fields: Nullable(ExtraFields),
  silent_ingestion: Type.Boolean(),
  resend_after_seconds: Nullable(
    Type.Integer({
      minimum: 1,
      maximum: 3600,
      description: 'ask the bank for a new code after this long without one; null: never',
    }),
  ),
  max_resends: Type.Integer({ minimum: 0, maximum: 5, description: 'new codes per request at most; default 2' }),
  keep_alive_seconds: Type.Integer({
    minimum: 1,
    maximum: 3600,
    description: 'persistent sessions: seconds between two keepAlive calls to the bank; default 300',
  }),
  quiet_hours: Nullable(
    Type.Object(
      {
        start: Type.String({ pattern: '^\\d{2}:\\d{2}$', description: 'HH:MM local time' }),
        end: Type.String({
          pattern: '^\\d{2}:\\d{2}$',
          description: 'HH:MM local time; before start = across midnight',
        }),
        time_zone: Type.String({ maxLength: 64, description: 'IANA zone, e.g. Europe/Amsterdam' }),
      },
      { additionalProperties: false },
    ),
  ),
};

const writeOnly = {
  credentials: Nullable(Credentials),
  totp_secret: Nullable(Type.String({ maxLength: 512 })),
  notification_auth_token: Nullable(Type.String({ maxLength: 1024 })),
  webhook_auth_token: Nullable(Type.String({ maxLength: 1024 })),
};

/** PUT body: any subset; `null` clears; secrets are write-only. */
// Type.Partial drops the inner object's options: additionalProperties goes on the Partial itself.
export const ConfigInputSchema = Type.Partial(Type.Object({ ...configFields, ...writeOnly }), {
  additionalProperties: false,
});

export const ConfigSchema = Type.Object(
  {
    ...configFields,
    credentials: Nullable(Type.Record(Type.String(), Type.String(), { description: 'masked' })),
    totp_secret: Nullable(Type.String({ description: 'masked' })),
    notification_auth_token: Nullable(Type.String({ description: 'masked' })),
    webhook_auth_token: Nullable(Type.String({ description: 'masked' })),
  },
  { $id: 'AccountConfig' },
);

const { credentials: _c, ...createConfig } = { ...configFields, ...writeOnly };

export const CreateAccountSchema = Type.Object(
  {
    bank_id: Type.String({ minLength: 1, maxLength: 64 }),
    name: AccountName,
    credentials: Type.Optional(Credentials),
    config: Type.Optional(Type.Partial(Type.Object(createConfig), { additionalProperties: false })),
  },
  { additionalProperties: false },
);

export const AccountStatusSchema = Literals(ACCOUNT_STATUSES);

export const AccountSchema = Type.Object(
  {
    id: Type.String(),
    bank_id: Type.String(),
    name: Type.String(),
    status: AccountStatusSchema,
    blocked_at: Nullable(Timestamp),
    blocked_reason: Nullable(Type.String()),
    consecutive_failures: Type.Integer(),
    has_credentials: Type.Boolean(),
    last_success_at: Nullable(Timestamp),
    last_run_at: Nullable(Timestamp),
    next_run_at: Nullable(Timestamp),
    trust_expires_at: Nullable(
      Type.String({ format: 'date-time', description: 'when the bank stops skipping the code (stored trust)' }),
    ),
    trust_challenged_at: Nullable(
      Type.String({
        format: 'date-time',
        description:
          'the last login the bank still asked a code for although trust was stored (trust that stopped working)',
      }),
    ),
    live_session_since: Nullable(
      Type.String({
        format: 'date-time',
        description: 'persistent sessions: when the open bank session a worker holds logged in; null: none held',
      }),
    ),
    created_at: Timestamp,
    updated_at: Timestamp,
  },
  { $id: 'Account' },
);

export const StatusSchema = Type.Object(
  {
    account_id: Type.String(),
    status: AccountStatusSchema,
    blocked_at: Nullable(Timestamp),
    blocked_reason: Nullable(Type.String()),
    session_running: Type.Boolean(),
    session: Nullable(
      Type.Object({ id: Type.String(), state: Literals(SESSION_STATES), started_at: Nullable(Timestamp) }),
    ),
    pending_assistance: Nullable(Type.Ref('AssistanceRequest')),
    last_success_at: Nullable(Timestamp),
    next_run_at: Nullable(Timestamp),
    trust_expires_at: Nullable(
      Type.String({ format: 'date-time', description: 'when the bank stops skipping the code (stored trust)' }),
    ),
    live_session_since: Nullable(
      Type.String({
        format: 'date-time',
        description: 'persistent sessions: when the open bank session a worker holds logged in; null: none held',
      }),
    ),
  },
  { $id: 'Status' },
);

export const BankSchema = Type.Object(
  {
    id: Type.String(),
    name: Type.String(),
    connector: Type.String(),
    country: Nullable(Type.String()),
    version: Type.String({ description: "the connector's own version (as of this bank's last start)" }),
    script_version: Type.String({ description: 'the same as version (kept for older clients)' }),
    credential_fields: Type.Array(
      Type.Object({
        name: Type.String(),
        label: Type.String(),
        type: Type.Union([Type.Literal('text'), Type.Literal('password')]),
        required: Type.Boolean(),
        pattern: Type.Optional(Type.String({ description: 'A regular expression a given value must match.' })),
        hint: Type.Optional(Type.String({ description: 'What a value must look like.' })),
      }),
    ),
  },
  { $id: 'Bank' },
);

export { AssistanceSchema };
