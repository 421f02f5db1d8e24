import type { Actor } from '../audit/repo.js';
import type { RelaysTable } from '../store/schema.js';

export type RelayProvider = RelaysTable['provider'];

/** One SMS as a relay hands it over. */
export interface InboundSms {
  to: string;
  from: string;
  body: string;
  /** When the phone received it (ms), if the relay says. */
  receivedAt: number | null;
}

/** Who relayed an SMS, and so which accounts it may reach. */
export interface SmsSource {
  orgId: string;
  actor: Actor;
  /** A restricted API key's accounts; null: every account of the organization. */
  accountIds: ReadonlySet<string> | null;
  relayId: string | null;
}

/** Why a relayed SMS was not (yet) submitted. */
export type RelayReason =
  /** `to` is not an international phone number. */
  | 'invalid_number'
  /** No account (that this relay may reach) has this `otp_phone`. */
  | 'no_account'
  /** Accounts on this number only take SMS from another sender (`sms_sender`). */
  | 'sender_mismatch'
  /** Nobody waits yet: kept for OTPILOT_SMS_HOLD_SECONDS and used if a request opens. */
  | 'held'
  /** Nobody waits, and the SMS is older than the hold window. */
  | 'too_old'
  /** More than one account waits for a code on this number: otpilot does not guess which. */
  | 'several_waiting_accounts'
  /** The text holds no code that fits the request. */
  | 'no_code'
  /** The text (or the held messages together) hold more than one candidate code. */
  | 'ambiguous_code'
  /** The account's `sms_code_pattern` no longer compiles. */
  | 'bad_pattern'
  /** The code found does not fit the request's descriptor. */
  | 'code_format'
  /** The bank is still judging an earlier code for this request. */
  | 'code_in_flight'
  /** The request closed before the code could be stored. */
  | 'request_closed';

/** The answer to a relayed SMS (api.md): `reason` is null exactly when the code was submitted. */
export interface RelayOutcome {
  matched: boolean;
  request_id: string | null;
  submitted: boolean;
  reason: RelayReason | null;
}

/** A relay as the API shows it; `url` is what to give the provider. */
export interface RelayView {
  id: string;
  provider: RelayProvider;
  url: string;
  created_at: string;
}

/** One SMS being routed: fresh from a relay, or taken out of the hold. */
export interface Message {
  source: SmsSource;
  from: string;
  body: string;
  held: boolean;
}
