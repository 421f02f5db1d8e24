import { type TSchema, Type } from 'typebox';
import { AssistanceSchema } from '../assistance/schemas.js';
import { EVENT_STATUS, type EventType } from '../core/events.js';
import { MovementSchema } from '../movements/schemas.js';
import { ExpectedPaymentSchema } from '../reconcile/schemas.js';

/**
 * What each event's `data` holds: the schema, the words in docs/webhooks.md's table, and an example.
 * Keyed by every event type, so a new type does not compile until it is documented here, and
 * docs/webhooks.md's table is written from this (`npm run docs:events`; a test fails when stale).
 */
export interface EventDoc {
  /** The `data` column of the table (Markdown). */
  data: string;
  schema: TSchema;
  example: unknown;
}

const Id = Type.String();
const NullableString = Type.Union([Type.String(), Type.Null()]);
const ACC = 'acc_01m812v70knx8q8zsd778da17v';
const SES = 'ses_01m812vjtxradbdtdpgx0s29gv';
const ASR = 'asr_01m812vm8m2bj0a7m2x3y4q9pd';

const failure = (category: string, message: string) => ({
  data: '`{ session_id, failure_category, message }`',
  schema: Type.Object({ session_id: Id, failure_category: Type.String(), message: NullableString }),
  example: { session_id: SES, failure_category: category, message },
});

/** An incoming transfer, as the payment examples carry it. */
const INCOMING = {
  id: 'mov_01m812vs1yq6h2w1a5c7e9g3kb',
  account_id: ACC,
  bank_account_id: 'bac_01m812vs0d3f5h7k9m1p3r5t7v',
  external_id: 'tx_ca_455dc851_2956',
  booked_at: '2026-11-21T08:00:00.000Z',
  amount: '120.00',
  currency: 'EUR',
  name: 'Ana María Pérez',
  reference: 'Order 1042',
  received_at: '2026-11-22T07:34:47.800Z',
};

const payment = (state: string, fields: Record<string, unknown>) => ({
  id: 'pay_01m812vx3c5e7g9j1l3n5q7s9u',
  external_id: 'order-1042',
  account_id: ACC,
  amount: '120.00',
  currency: 'EUR',
  payer_name: 'Ana Maria Perez',
  reference: 'Order 1042',
  expected_date: '2026-11-21',
  expires_at: '2026-12-22T07:30:00.000Z',
  metadata: {},
  state,
  source: 'api',
  match: null,
  candidates: [],
  cancel_reason: null,
  created_at: '2026-11-21T07:30:00.000Z',
  updated_at: '2026-11-22T07:34:48.000Z',
  ...fields,
});

export const EVENT_CATALOG: Record<EventType, EventDoc> = {
  assistance_required: {
    data: 'the [assistance request](api.md#one-time-codes); approval requests too (`type: "approval"`)',
    schema: AssistanceSchema,
    example: {
      id: ASR,
      account_id: ACC,
      session_id: SES,
      type: 'otp',
      state: 'pending',
      descriptor: {
        length: 6,
        type: 'numeric',
        purpose: 'login',
        prompt: 'Enter the code we sent to •••• 0653',
        channel: 'sms',
      },
      attempts: 0,
      max_attempts: 3,
      resends: 0,
      last_error: null,
      code_in_flight: false,
      created_at: '2026-11-22T07:34:12.000Z',
      expires_at: '2026-11-22T07:39:12.000Z',
      resolved_at: null,
      resolution: null,
    },
  },
  assistance_fulfilled: {
    data: '`{ id, reason, via }`: `reason` is `accepted` (a code; `via` says where it came from) or `approved` (in the bank’s app; `via` is `null`)',
    schema: Type.Object({
      id: Id,
      reason: Type.Union([Type.Literal('accepted'), Type.Literal('approved')]),
      via: NullableString,
    }),
    example: { id: ASR, reason: 'accepted', via: 'dashboard' },
  },
  assistance_cancelled: {
    data: '`{ id, reason }` (`attempts_exhausted`, or how the session ended)',
    schema: Type.Object({ id: Id, reason: Type.String() }),
    example: { id: ASR, reason: 'attempts_exhausted' },
  },
  assistance_expired: {
    data: '`{ id, reason: "deadline" }`',
    schema: Type.Object({ id: Id, reason: Type.String() }),
    example: { id: ASR, reason: 'deadline' },
  },
  assistance_resent: {
    data: '`{ id, resends }`: the bank was asked for a new code ([engine.md](engine.md#resend))',
    schema: Type.Object({ id: Id, resends: Type.Integer({ minimum: 1 }) }),
    example: { id: ASR, resends: 1 },
  },
  login_failed: failure('invalid_credentials', 'unknown username or wrong password'),
  scrape_failed: failure('bank_unavailable', 'the bank is temporarily unavailable'),
  scrape_succeeded: {
    data: '`{ session_id, movements_new }`',
    schema: Type.Object({ session_id: Id, movements_new: Type.Integer({ minimum: 0 }) }),
    example: { session_id: SES, movements_new: 542 },
  },
  account_blocked: {
    data: '`{ reason, session_id }`: a failure category, or `N consecutive failures (last: …)`',
    schema: Type.Object({ reason: Type.String(), session_id: Id }),
    example: { reason: 'invalid_credentials', session_id: SES },
  },
  account_reconnected: {
    data: '`{ id: account_id, reconnect_id }`: the account’s owner finished a [reconnect](integrators.md) and the data call that asked for it succeeded',
    schema: Type.Object({ id: Id, reconnect_id: Id }),
    example: { id: ACC, reconnect_id: 'rcn_01m812vq2c0z3w7kq1n3p6x8ds' },
  },
  results_ready: {
    data: '`{ id }`: the results of a data call that answered `PENDING` or `RECONNECT_REQUIRED` are ready at `GET /v1/results/:id`',
    schema: Type.Object({ id: Id }),
    example: { id: 'res_01m812vr5d9kfy2m0q4n8t1h3a' },
  },
  account_reauthorized: {
    data: '`{ id: account_id }`: a [reauthorisation](api.md#reauthorisation-mono-style) login succeeded; once per connect session',
    schema: Type.Object({ id: Id }),
    example: { id: ACC },
  },
  bank_movement: {
    data: 'the [movement](api.md#movements)',
    schema: MovementSchema,
    example: {
      id: 'mov_01m812vs1yq6h2w1a5c7e9g3kb',
      account_id: ACC,
      bank_account_id: 'bac_01m812vs0d3f5h7k9m1p3r5t7v',
      external_id: 'tx_ca_455dc851_2956',
      booked_at: '2026-11-21T08:00:00.000Z',
      amount: '-15.71',
      currency: 'EUR',
      name: 'Coffee Corner',
      reference: 'Card payment',
      received_at: '2026-11-22T07:34:47.800Z',
    },
  },
  sms_relay_refused: {
    data: '`{ request_id, reason, relay_id }`: a relayed SMS reached this account’s waiting request but was not used ([automation.md](automation.md#what-happens-to-an-sms))',
    schema: Type.Object({ request_id: Id, reason: Type.String(), relay_id: Id }),
    example: { request_id: ASR, reason: 'no_code', relay_id: 'rly_01m812vt7w2e4r6t8y0u2i4o6p' },
  },
  trust_expiring: {
    data: '`{ expires_at }`: the bank stops skipping the code soon ([automation.md](automation.md#trust))',
    schema: Type.Object({ expires_at: Type.String({ format: 'date-time' }) }),
    example: { expires_at: '2026-11-25T07:34:47.000Z' },
  },
  payment_matched: {
    data: 'the [expected payment](reconciliation.md), with `match` (movement, score, reasons)',
    schema: ExpectedPaymentSchema,
    example: payment('matched', {
      match: {
        movement: INCOMING,
        score: 0.93,
        reasons: ['amount', 'currency', 'date_window', 'name_similar'],
        matched_at: '2026-11-22T07:34:48.000Z',
        matched_by: 'auto',
      },
    }),
  },
  payment_ambiguous: {
    data: 'the expected payment, with its `candidates`: a person must choose',
    schema: ExpectedPaymentSchema,
    example: payment('ambiguous', {
      candidates: [
        { movement: INCOMING, score: 0.9, reasons: ['amount', 'currency', 'date_window', 'name_similar'] },
        {
          movement: { ...INCOMING, id: 'mov_01m812vs1yq6h2w1a5c7e9g3kc', external_id: 'tx_ca_455dc851_2957' },
          score: 0.9,
          reasons: ['amount', 'currency', 'date_window', 'name_similar'],
        },
      ],
    }),
  },
  payment_expired: {
    data: 'the expected payment, unpaid at `expires_at`',
    schema: ExpectedPaymentSchema,
    example: payment('expired', {}),
  },
  payment_received: {
    data: 'the incoming [movement](api.md#movements) of a [passthrough](reconciliation.md#passthrough-accounts) account',
    schema: MovementSchema,
    example: INCOMING,
  },
  webhook_endpoint_disabled: {
    data: '`{ id, url, reason }`; `account_id` is `null`',
    schema: Type.Object({ id: Id, url: Type.String(), reason: Type.String() }),
    example: {
      id: 'whk_01m812vbs8bmjb891kjt8rcd3t',
      url: 'https://hooks.example.com/otpilot',
      reason: 'every delivery failed for 5 days',
    },
  },
};

/** The envelope every event arrives in (webhooks and the stream). */
export const EnvelopeDocSchema = Type.Object(
  {
    id: Type.String({ pattern: '^evt_' }),
    type: Type.String(),
    status: Type.String(),
    account_id: NullableString,
    data: Type.Unknown(),
    occurred_at: Type.String({ format: 'date-time' }),
  },
  { additionalProperties: false },
);

export const TABLE_START =
  '<!-- event table: generated by `npm run docs:events` from src/events/catalog.ts; do not edit -->';
export const TABLE_END = '<!-- end of the event table -->';

/** The table of event types for docs/webhooks.md, one row per type in the code's order. */
export function renderEventTable(): string {
  const rows = (Object.keys(EVENT_STATUS) as EventType[]).map(
    (type) => `| \`${type}\` | \`${EVENT_STATUS[type]}\` | ${EVENT_CATALOG[type].data} |`,
  );
  const examples = (Object.keys(EVENT_STATUS) as EventType[]).flatMap((type) => [
    `\`${type}\`:`,
    '',
    '```json',
    JSON.stringify(EVENT_CATALOG[type].example),
    '```',
    '',
  ]);
  return [
    TABLE_START,
    '',
    '| type | status | `data` |',
    '|---|---|---|',
    ...rows,
    '',
    '<details><summary>An example <code>data</code> of each type</summary>',
    '',
    ...examples,
    '</details>',
    '',
    TABLE_END,
  ].join('\n');
}

/** `markdown` with its generated table replaced by the current one. */
export function withEventTable(markdown: string): string {
  const start = markdown.indexOf(TABLE_START);
  const end = markdown.indexOf(TABLE_END);
  if (start < 0 || end < start) throw new Error('docs/webhooks.md has no event table markers');
  return markdown.slice(0, start) + renderEventTable() + markdown.slice(end + TABLE_END.length);
}
