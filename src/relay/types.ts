import type { Static } from 'typebox';
import type { Actor } from '../audit/repo.js';
import type { RelaysTable } from '../store/schema.js';
import type { RelayOutcomeSchema, RelayReasonSchema, RelaySchema } from './schemas.js';

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

/** Why a relayed SMS was not (yet) submitted (each reason's meaning is in its schema). */
export type RelayReason = Static<typeof RelayReasonSchema>;

/** The answer to a relayed SMS (docs/api.md): `reason` is null exactly when the code was submitted. */
export type RelayOutcome = Static<typeof RelayOutcomeSchema>;

/** A relay as the API shows it; `url` is what to give the provider. */
export type RelayView = Static<typeof RelaySchema>;

/** One SMS being routed: fresh from a relay, or taken out of the hold. */
export interface Message {
  source: SmsSource;
  from: string;
  body: string;
  held: boolean;
}
