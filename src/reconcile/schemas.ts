import { Type } from 'typebox';
import { Nullable, Timestamp } from '../http/schemas.js';
import { MAX_BATCH } from './input.js';

const Reasons = Type.Array(Type.String(), {
  description: 'amount, currency, date_window, reference, name_exact, name_similar, manual',
});

export const PaymentInputSchema = Type.Object(
  {
    external_id: Type.String({
      minLength: 1,
      maxLength: 128,
      description: 'your own id: creating it again is a no-op',
    }),
    account_id: Type.Optional(
      Nullable(Type.String({ maxLength: 64, description: 'null or absent: any account of the organization' })),
    ),
    amount: Type.String({ maxLength: 40, description: 'positive decimal string in the major unit, e.g. "125.00"' }),
    currency: Type.String({ maxLength: 3, description: 'ISO 4217 code' }),
    payer_name: Type.String({ maxLength: 200 }),
    reference: Type.Optional(Nullable(Type.String({ maxLength: 140 }))),
    expected_date: Type.Optional(Nullable(Type.String({ maxLength: 10, description: 'YYYY-MM-DD' }))),
    expires_at: Type.Optional(
      Nullable(
        Type.String({
          maxLength: 40,
          description: 'ISO 8601; default 30 days after registration (or the expected date)',
        }),
      ),
    ),
    metadata: Type.Optional(
      Nullable(Type.Object({}, { additionalProperties: true, description: 'at most 4 KiB of JSON' })),
    ),
  },
  { additionalProperties: false },
);

export const PaymentBatchSchema = Type.Object(
  { payments: Type.Array(PaymentInputSchema, { minItems: 1, maxItems: MAX_BATCH }) },
  { additionalProperties: false },
);

export const ExpectedPaymentSchema = Type.Object(
  {
    id: Type.String(),
    external_id: Type.String(),
    account_id: Nullable(Type.String()),
    amount: Type.String(),
    currency: Type.String(),
    payer_name: Type.String(),
    reference: Nullable(Type.String()),
    expected_date: Nullable(Type.String()),
    expires_at: Timestamp,
    metadata: Type.Object({}, { additionalProperties: true }),
    state: Type.Union(['pending', 'matched', 'ambiguous', 'expired', 'cancelled'].map((s) => Type.Literal(s))),
    source: Type.Union([Type.Literal('api'), Type.Literal('pull')]),
    match: Nullable(
      Type.Object({
        movement: Nullable(Type.Ref('Movement')),
        score: Nullable(Type.Number({ description: '0..1' })),
        reasons: Reasons,
        matched_at: Timestamp,
        matched_by: Type.String({
          description: '`auto`, or the actor who resolved it (`user:usr_…`, `api_key:key_…`)',
        }),
      }),
    ),
    candidates: Type.Array(Type.Object({ movement: Type.Ref('Movement'), score: Type.Number(), reasons: Reasons }), {
      description: 'ambiguous payments: the equally good movements, best first',
    }),
    cancel_reason: Nullable(Type.String({ description: 'cancelled_by_caller or vanished_from_source' })),
    created_at: Timestamp,
    updated_at: Timestamp,
  },
  { $id: 'ExpectedPayment' },
);

export const OrgSettingsSchema = Type.Object(
  {
    window_days_before: Type.Integer({
      minimum: 0,
      maximum: 365,
      description: 'days before registration a movement may be booked [5]',
    }),
    window_days_after: Nullable(
      Type.Integer({ minimum: 0, maximum: 3650, description: 'days after registration; null = any time [null]' }),
    ),
  },
  { additionalProperties: false },
);

export const AccountSettingsSchema = Type.Object({
  account_id: Type.String(),
  mode: Type.Union([Type.Literal('match'), Type.Literal('passthrough')]),
  source_url: Nullable(Type.String()),
  poll_seconds: Type.Integer(),
  polled_at: Nullable(Timestamp),
  poll_error: Nullable(Type.String()),
});

export const AccountSettingsInput = Type.Object(
  {
    mode: Type.Optional(Type.Union([Type.Literal('match'), Type.Literal('passthrough')])),
    source_url: Type.Optional(Nullable(Type.String({ maxLength: 2000 }))),
    poll_seconds: Type.Optional(Type.Integer({ minimum: 30, maximum: 86_400 })),
  },
  { additionalProperties: false },
);
