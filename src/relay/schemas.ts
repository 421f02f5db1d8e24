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
  Type.Literal('invalid_number', { description: '`to` is not an international phone number.' }),
  Type.Literal('no_account', { description: 'No account (that this relay may reach) has this `otp_phone`.' }),
  Type.Literal('sender_mismatch', {
    description: 'Accounts on this number only take SMS from another sender (`sms_sender`).',
  }),
  Type.Literal('held', {
    description: 'Nobody waits yet: kept for OTPILOT_SMS_HOLD_SECONDS and used if a request opens.',
  }),
  Type.Literal('too_old', { description: 'Nobody waits, and the SMS is older than the hold window.' }),
  Type.Literal('several_waiting_accounts', {
    description: 'More than one account waits for a code on this number: otpilot does not guess which.',
  }),
  Type.Literal('no_code', { description: 'The text holds no code that fits the request.' }),
  Type.Literal('ambiguous_code', {
    description: 'The text (or the held messages together) hold more than one candidate code.',
  }),
  Type.Literal('bad_pattern', { description: "The account's `sms_code_pattern` no longer compiles." }),
  Type.Literal('code_format', { description: "The code found does not fit the request's descriptor." }),
  Type.Literal('code_in_flight', { description: 'The bank is still judging an earlier code for this request.' }),
  Type.Literal('request_closed', { description: 'The request closed before the code could be stored.' }),
  Type.Literal('rate_limited', {
    description: "The account's codes for this minute are used up (OTPILOT_CODE_RATE_LIMIT); the SMS was not used.",
  }),
]);

export const RelayOutcomeSchema = Type.Object({
  matched: Type.Boolean({ description: 'exactly one waiting request could take this SMS' }),
  request_id: Nullable(Type.String()),
  submitted: Type.Boolean(),
  reason: Nullable(RelayReasonSchema),
});
