import { Type } from 'typebox';
import { Nullable, Timestamp } from '../http/schemas.js';

const Provider = Type.Union([Type.Literal('twilio'), Type.Literal('json')]);

export const RelaySchema = Type.Object({
  id: Type.String(),
  provider: Provider,
  url: Type.String({ description: 'the inbound URL to give the provider' }),
  created_at: Timestamp,
});

export const CreateRelaySchema = Type.Object(
  {
    provider: Provider,
    auth_token: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 256,
        description: "Twilio's auth token (required for twilio, refused for json); write-only, stored encrypted",
      }),
    ),
  },
  { additionalProperties: false },
);

/** Longest SMS text read (Twilio joins at most 1,600 characters); extraction runs over all of it. */
const MAX_BODY = 4096;

export const InboundSmsSchema = Type.Object(
  {
    to: Type.String({ minLength: 1, maxLength: 64, description: 'the receiving number, with its country code' }),
    from: Type.String({ maxLength: 64, description: 'the sender: a number or a name' }),
    body: Type.String({ maxLength: MAX_BODY }),
    received_at: Type.Optional(Type.String({ format: 'date-time', description: 'when the phone received it' })),
  },
  { additionalProperties: false },
);

/** Twilio's inbound-message fields; others (MessageSid, AccountSid, …) are signed and accepted. */
export const TwilioSmsSchema = Type.Object(
  {
    To: Type.String({ minLength: 1, maxLength: 64 }),
    From: Type.String({ maxLength: 64 }),
    Body: Type.String({ maxLength: MAX_BODY }),
  },
  { additionalProperties: true },
);

export const RelayReasonSchema = Type.Union([
  Type.Literal('invalid_number'),
  Type.Literal('no_account'),
  Type.Literal('sender_mismatch'),
  Type.Literal('held'),
  Type.Literal('too_old'),
  Type.Literal('several_waiting_accounts'),
  Type.Literal('no_code'),
  Type.Literal('ambiguous_code'),
  Type.Literal('bad_pattern'),
  Type.Literal('code_format'),
  Type.Literal('code_in_flight'),
  Type.Literal('request_closed'),
]);

export const RelayOutcomeSchema = Type.Object({
  matched: Type.Boolean({ description: 'exactly one waiting request could take this SMS' }),
  request_id: Nullable(Type.String()),
  submitted: Type.Boolean(),
  reason: Nullable(RelayReasonSchema),
});
