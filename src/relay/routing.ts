import type { AssistanceRequest } from '../assistance/request.js';
import type { SubmitReason } from '../assistance/submit.js';
import { type Extraction, extractCode } from '../core/code-extract.js';
import { sameSender } from '../core/phone.js';
import { canSeeAccount } from '../keys/principal.js';
import type { PhoneAccount } from './repo.js';
import type { Message, RelayReason } from './types.js';

/*
 * The relay's decisions, pure: which waiting request an SMS may answer, which code a set of messages
 * holds, and what each outcome means. No I/O here; service.ts does the reading, holding and submitting.
 */

/** A waiting request together with its account's SMS hints. */
export interface Waiting {
  account: PhoneAccount;
  request: AssistanceRequest;
}

/** Reasons that concern a waiting request: its account hears about them (`sms_relay_refused`). */
export function concernsRequest(reason: RelayReason): boolean {
  switch (reason) {
    case 'several_waiting_accounts':
    case 'no_code':
    case 'ambiguous_code':
    case 'bad_pattern':
    case 'code_format':
    case 'code_in_flight':
    case 'rate_limited':
      return true;
    case 'invalid_number':
    case 'no_account':
    case 'sender_mismatch':
    case 'held':
    case 'too_old':
    case 'request_closed':
      return false;
    default: {
      const never: never = reason;
      throw new Error(`unknown reason ${String(never)}`);
    }
  }
}

export function extractionReason(extraction: Extract<Extraction, { ok: false }>): RelayReason {
  switch (extraction.reason) {
    case 'no_code':
      return 'no_code';
    case 'ambiguous':
      return 'ambiguous_code';
    case 'bad_pattern':
      return 'bad_pattern';
    default: {
      const never: never = extraction.reason;
      throw new Error(`unknown extraction failure ${String(never)}`);
    }
  }
}

/** The waiting requests one message may answer: reachable by its relay, and from the expected sender. */
export function eligible(message: Message, waiting: Waiting[]): Waiting[] {
  return waiting.filter(
    (w) =>
      canSeeAccount(message.source, w.account.account_id) &&
      (w.account.sms_sender === null || sameSender(w.account.sms_sender, message.from)),
  );
}

/** The one code several messages for one request agree on, or why there is none. */
export function codeIn(target: Waiting, messages: Message[]): { code: string } | { reason: RelayReason } {
  if (target.request.type !== 'otp') return { reason: 'no_code' };
  const codes = new Set<string>();
  let refusal: RelayReason | null = null;
  for (const message of messages) {
    const found = extractCode(message.body, target.request.descriptor, { pattern: target.account.sms_code_pattern });
    if (found.ok) codes.add(found.code);
    else if (found.reason !== 'no_code' || refusal === null) refusal = extractionReason(found);
  }
  if (codes.size > 1 || refusal === 'ambiguous_code' || refusal === 'bad_pattern')
    return { reason: refusal === 'bad_pattern' ? 'bad_pattern' : 'ambiguous_code' };
  const [code] = [...codes];
  return code === undefined ? { reason: refusal ?? 'no_code' } : { code };
}

/** A refused submission in the relay's own words. */
export function relayReasonFor(reason: SubmitReason): RelayReason {
  switch (reason) {
    case 'format':
      return 'code_format';
    case 'in_flight':
      return 'code_in_flight';
    case 'rate_limited':
      return 'rate_limited';
    case 'no_pending':
    case 'stale':
    case 'approval':
    case 'session_lost':
      return 'request_closed';
    default: {
      const never: never = reason;
      throw new Error(`unknown submit reason ${String(never)}`);
    }
  }
}
