import type { Logger } from 'pino';
import type { AssistanceView } from '../assistance/repo.js';
import type { AssistanceService } from '../assistance/service.js';
import { type Actor, recordAudit } from '../audit/repo.js';
import { type Extraction, extractCode } from '../core/code-extract.js';
import type { CodeDescriptor } from '../core/descriptor.js';
import type { ErrorCode } from '../core/errors.js';
import type { EventEnvelope } from '../core/events.js';
import { newId } from '../core/ids.js';
import { sameSender, toE164 } from '../core/phone.js';
import { fail, ok, type Result } from '../core/result.js';
import type { Clock } from '../core/time.js';
import type { Bus } from '../events/bus.js';
import type { Transact } from '../events/outbox.js';
import { canSeeAccount, type Principal, refuseIfRestricted } from '../keys/principal.js';
import type { Cipher } from '../security/cipher.js';
import type { Db } from '../store/db.js';
import type { AssistanceRequestsTable, HeldSmsTable, RelaysTable } from '../store/schema.js';
import {
  accountsOnPhone,
  anyHeld,
  claimHeld,
  deleteRelay,
  discardExpiredHeld,
  findRelay,
  heldFor,
  insertHeld,
  insertRelay,
  listRelays,
  type PhoneAccount,
  pendingRequestsOf,
} from './repo.js';

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

export interface RelayService {
  create(
    principal: Principal,
    input: { provider: RelayProvider; auth_token?: string },
    baseUrl: string,
  ): Promise<Result<RelayView>>;
  list(principal: Principal, baseUrl: string): Promise<RelayView[]>;
  remove(principal: Principal, id: string): Promise<Result<null>>;
  /** A Twilio relay and its auth token (decrypted, to check a request's signature), or null. */
  twilioRelay(id: string): Promise<{ relay: RelaysTable; authToken: string } | null>;
  /** Routes one SMS to the one request waiting for it, or holds it, or says why not. */
  receive(source: SmsSource, sms: InboundSms): Promise<RelayOutcome>;
  /** Uses held SMS when a request opens (bus events) and drops expired ones. */
  start(): void;
  stop(): void;
}

export interface RelayDeps {
  db: Db;
  transact: Transact;
  bus: Bus;
  cipher: Cipher;
  clock: Clock;
  assistance: AssistanceService;
  log: Logger;
  /** How long an SMS that nobody waits for yet is kept, ms [OTPILOT_SMS_HOLD_SECONDS]. */
  holdMs: number;
}

/** The inbound URL a provider calls: Twilio's own route, or the JSON route (with an API key). */
function relayUrl(baseUrl: string, relay: Pick<RelaysTable, 'id' | 'provider'>): string {
  switch (relay.provider) {
    case 'twilio':
      return `${baseUrl}/relay/twilio/${relay.id}`;
    case 'json':
      return `${baseUrl}/v1/relay/sms`;
    default: {
      const never: never = relay.provider;
      throw new Error(`unknown provider ${String(never)}`);
    }
  }
}

const tokenContext = (relayId: string) => `${relayId}:auth_token`;
const heldContext = (heldId: string) => `${heldId}:sms`;

/** A waiting request together with its account's SMS hints. */
interface Waiting {
  account: PhoneAccount;
  request: AssistanceRequestsTable;
}

/** One SMS being routed: fresh from a relay, or taken out of the hold. */
interface Message {
  source: SmsSource;
  from: string;
  body: string;
  held: boolean;
}

const SUBMIT_FAILURES: Partial<Record<ErrorCode, RelayReason>> = {
  CODE_FORMAT: 'code_format',
  CODE_IN_FLIGHT: 'code_in_flight',
  STALE_REQUEST: 'request_closed',
  NO_PENDING_REQUEST: 'request_closed',
};

/** Reasons that concern a waiting request: its account hears about them (`sms_relay_refused`). */
function concernsRequest(reason: RelayReason): boolean {
  switch (reason) {
    case 'several_waiting_accounts':
    case 'no_code':
    case 'ambiguous_code':
    case 'bad_pattern':
    case 'code_format':
    case 'code_in_flight':
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

function extractionReason(extraction: Extract<Extraction, { ok: false }>): RelayReason {
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

/** Whether a request can take a code from an SMS: a code request, not an authenticator or app approval. */
function takesSms(request: Pick<AssistanceRequestsTable, 'type' | 'descriptor'>): boolean {
  if (request.type !== 'otp') return false;
  return (JSON.parse(request.descriptor) as CodeDescriptor).channel !== 'authenticator';
}

export function makeRelayService(deps: RelayDeps): RelayService {
  const { db, transact, cipher, clock, log } = deps;
  const view = (relay: RelaysTable, baseUrl: string): RelayView => ({
    id: relay.id,
    provider: relay.provider,
    url: relayUrl(baseUrl, relay),
    created_at: new Date(relay.created_at).toISOString(),
  });

  /** The requests on this number that an SMS could answer, with their accounts' hints. */
  async function waitingOn(orgId: string, phone: string): Promise<Waiting[]> {
    const accounts = await accountsOnPhone(db, orgId, phone);
    const now = clock();
    const requests = await pendingRequestsOf(
      db,
      accounts.map((a) => a.account_id),
    );
    const byAccount = new Map(accounts.map((a) => [a.account_id, a]));
    return requests
      .filter((r) => r.expires_at > now && takesSms(r))
      .map((request) => ({ account: byAccount.get(request.account_id)!, request }));
  }

  /** The waiting requests one message may answer: reachable by its relay, and from the expected sender. */
  const eligible = (message: Message, waiting: Waiting[]) =>
    waiting.filter(
      (w) =>
        canSeeAccount(message.source, w.account.account_id) &&
        (w.account.sms_sender === null || sameSender(w.account.sms_sender, message.from)),
    );

  /** Records what became of one SMS: an audit entry, and an event for each account it left waiting. */
  async function record(message: Message, outcome: RelayOutcome, accountIds: string[]): Promise<RelayOutcome> {
    await transact(async (trx, uow) => {
      await recordAudit(
        trx,
        {
          orgId: message.source.orgId,
          actor: message.source.actor,
          action: 'relay.sms',
          accountId: accountIds.length === 1 ? accountIds[0] : null,
          targetId: outcome.request_id,
          outcome: outcome.reason ?? 'submitted',
          // Never the body, the code or the sender: only where it came from and where it went.
          details: {
            relay_id: message.source.relayId,
            held: message.held,
            ...(accountIds.length > 1 ? { account_ids: accountIds } : {}),
          },
        },
        clock(),
      );
      if (outcome.reason === null || !concernsRequest(outcome.reason)) return;
      for (const accountId of accountIds) {
        uow.emit({
          orgId: message.source.orgId,
          accountId,
          type: 'sms_relay_refused',
          data: { request_id: outcome.request_id, reason: outcome.reason, relay_id: message.source.relayId },
        });
      }
    });
    log.debug({ relay_id: message.source.relayId, outcome: outcome.reason ?? 'submitted' }, 'relayed SMS');
    return outcome;
  }

  /**
   * Finds the code for one waiting request in its messages and submits it through the same
   * compare-and-set path as the dashboard and the API. Several messages (held ones) must agree.
   */
  async function answer(target: Waiting, messages: Message[]): Promise<RelayOutcome> {
    const descriptor = JSON.parse(target.request.descriptor) as CodeDescriptor;
    const codes = new Set<string>();
    let refusal: RelayReason | null = null;
    for (const message of messages) {
      const found = extractCode(message.body, descriptor, { pattern: target.account.sms_code_pattern });
      if (found.ok) codes.add(found.code);
      else if (found.reason !== 'no_code' || refusal === null) refusal = extractionReason(found);
    }
    const base = { matched: true, request_id: target.request.id, submitted: false };
    if (codes.size > 1 || refusal === 'ambiguous_code' || refusal === 'bad_pattern')
      return { ...base, reason: refusal === 'bad_pattern' ? 'bad_pattern' : 'ambiguous_code' };
    const [code] = [...codes];
    if (code === undefined) return { ...base, reason: refusal ?? 'no_code' };
    const source = messages[0]!.source;
    const principal: Principal = {
      orgId: source.orgId,
      actor: source.actor,
      scopes: new Set(['otp:write']),
      accountIds: source.accountIds,
    };
    const submitted = await deps.assistance.submitCode(principal, target.account.account_id, {
      code,
      requestId: target.request.id,
      via: 'sms_relay',
    });
    if (submitted.ok) return { ...base, submitted: true, reason: null };
    return { ...base, reason: SUBMIT_FAILURES[submitted.code] ?? 'request_closed' };
  }

  /**
   * Routes messages to the requests they may answer. A message with no eligible request is left
   * out of the result (the caller holds it or keeps it held); one with several is refused.
   */
  async function dispatch(messages: Message[], waiting: Waiting[]): Promise<Map<Message, RelayOutcome>> {
    const outcomes = new Map<Message, RelayOutcome>();
    const perRequest = new Map<string, { target: Waiting; messages: Message[] }>();
    for (const message of messages) {
      const targets = eligible(message, waiting);
      if (targets.length > 1) {
        const outcome: RelayOutcome = {
          matched: false,
          request_id: null,
          submitted: false,
          reason: 'several_waiting_accounts',
        };
        outcomes.set(
          message,
          await record(
            message,
            outcome,
            targets.map((t) => t.account.account_id),
          ),
        );
      } else if (targets.length === 1) {
        const target = targets[0]!;
        const group = perRequest.get(target.request.id) ?? { target, messages: [] };
        group.messages.push(message);
        perRequest.set(target.request.id, group);
      }
    }
    for (const { target, messages: group } of perRequest.values()) {
      const outcome = await answer(target, group);
      for (const message of group) outcomes.set(message, await record(message, outcome, [target.account.account_id]));
    }
    return outcomes;
  }

  /** Uses the held messages of a number when a request waits on it. Returns what became of each. */
  async function release(orgId: string, phone: string): Promise<Map<string, RelayOutcome>> {
    const now = clock();
    const held = await heldFor(db, orgId, phone, now);
    if (held.length === 0) return new Map();
    const waiting = await waitingOn(orgId, phone);
    if (waiting.length === 0) return new Map();
    const candidates = held
      .map((row) => ({ id: row.id, message: heldMessage(row) }))
      .filter(({ message }) => eligible(message, waiting).length > 0);
    const claimed = new Set(
      (
        await claimHeld(
          db,
          candidates.map((c) => c.id),
        )
      ).map((row) => row.id),
    );
    const mine = candidates.filter((c) => claimed.has(c.id));
    const outcomes = await dispatch(
      mine.map((c) => c.message),
      waiting,
    );
    const byId = new Map<string, RelayOutcome>();
    for (const { id, message } of mine) {
      const outcome = outcomes.get(message);
      if (outcome) byId.set(id, outcome);
    }
    return byId;
  }

  function heldMessage(row: HeldSmsTable): Message {
    const { from, body } = JSON.parse(cipher.decrypt(row.message_enc, heldContext(row.id))) as {
      from: string;
      body: string;
    };
    return {
      source: {
        orgId: row.org_id,
        actor: { type: row.actor_type, id: row.actor_id },
        accountIds: row.account_ids === null ? null : new Set(JSON.parse(row.account_ids) as string[]),
        relayId: row.relay_id,
      },
      from,
      body,
      held: true,
    };
  }

  async function onRequestOpened(request: AssistanceView): Promise<void> {
    if (request.type !== 'otp' || request.descriptor.channel === 'authenticator') return;
    // Nearly every request opens with nothing held: one look, and no more work then.
    if (!(await anyHeld(db))) return;
    await discardExpiredHeld(db, clock());
    const config = await db
      .selectFrom('account_config')
      .select(['org_id', 'otp_phone'])
      .where('account_id', '=', request.account_id)
      .executeTakeFirst();
    if (!config?.otp_phone) return;
    await release(config.org_id, config.otp_phone);
  }

  let unsubscribe: () => void = () => {};
  let timer: NodeJS.Timeout | null = null;

  return {
    async create(principal, input, baseUrl) {
      const refused = refuseIfRestricted(principal, 'manage relays');
      if (refused) return refused;
      const token = input.auth_token ?? null;
      if (input.provider === 'twilio' && token === null)
        return fail('VALIDATION_FAILED', 'a Twilio relay needs the auth token that signs its requests', [
          { path: '/auth_token', message: 'is required for provider twilio' },
        ]);
      if (input.provider === 'json' && token !== null)
        return fail('VALIDATION_FAILED', 'JSON relays authenticate with an API key (relay:write), not a token', [
          { path: '/auth_token', message: 'is only for provider twilio' },
        ]);
      const now = clock();
      const id = newId('rly', now);
      const row: RelaysTable = {
        id,
        org_id: principal.orgId,
        provider: input.provider,
        auth_token_enc: token === null ? null : cipher.encrypt(token, tokenContext(id)),
        created_at: now,
      };
      await transact(async (trx) => {
        await insertRelay(trx, row);
        await recordAudit(
          trx,
          {
            orgId: principal.orgId,
            actor: principal.actor,
            action: 'relay.create',
            targetId: id,
            outcome: 'ok',
            details: { provider: input.provider },
          },
          now,
        );
      });
      return ok(view(row, baseUrl));
    },

    async list(principal, baseUrl) {
      return (await listRelays(db, principal.orgId)).map((relay) => view(relay, baseUrl));
    },

    async remove(principal, id) {
      const refused = refuseIfRestricted(principal, 'manage relays');
      if (refused) return refused;
      const removed = await transact(async (trx) => {
        if (!(await deleteRelay(trx, principal.orgId, id))) return false;
        await recordAudit(
          trx,
          { orgId: principal.orgId, actor: principal.actor, action: 'relay.delete', targetId: id, outcome: 'ok' },
          clock(),
        );
        return true;
      });
      return removed ? ok(null) : fail('NOT_FOUND', 'relay not found');
    },

    async twilioRelay(id) {
      const relay = await findRelay(db, id);
      if (relay?.provider !== 'twilio' || relay.auth_token_enc === null) return null;
      return { relay, authToken: cipher.decrypt(relay.auth_token_enc, tokenContext(relay.id)) };
    },

    async receive(source, sms) {
      const now = clock();
      const phone = toE164(sms.to);
      const unrouted = (reason: RelayReason): RelayOutcome => ({
        matched: false,
        request_id: null,
        submitted: false,
        reason,
      });
      const message: Message = { source, from: sms.from, body: sms.body, held: false };
      if (phone === null) return record(message, unrouted('invalid_number'), []);
      const accounts = (await accountsOnPhone(db, source.orgId, phone)).filter((a) =>
        canSeeAccount(source, a.account_id),
      );
      if (accounts.length === 0) return record(message, unrouted('no_account'), []);
      const expecting = accounts
        .filter((a) => a.sms_sender === null || sameSender(a.sms_sender, sms.from))
        .map((a) => a.account_id);
      if (expecting.length === 0)
        return record(
          message,
          unrouted('sender_mismatch'),
          accounts.map((a) => a.account_id),
        );

      const routed = (await dispatch([message], await waitingOn(source.orgId, phone))).get(message);
      if (routed) return routed;

      // Nobody waits yet: the bank may have sent the SMS before the login reached its prompt.
      const expiresAt = Math.min(now, sms.receivedAt ?? now) + deps.holdMs;
      if (expiresAt <= now) return record(message, unrouted('too_old'), expecting);
      const id = newId('sms', now);
      await insertHeld(db, {
        id,
        org_id: source.orgId,
        to_phone: phone,
        relay_id: source.relayId,
        actor_type: source.actor.type,
        actor_id: source.actor.id,
        account_ids: source.accountIds === null ? null : JSON.stringify([...source.accountIds]),
        message_enc: cipher.encrypt(JSON.stringify({ from: sms.from, body: sms.body }), heldContext(id)),
        received_at: sms.receivedAt ?? now,
        expires_at: expiresAt,
      });
      // A request may have opened between the look above and the insert, its own look finding
      // nothing held yet: look once more (the claim makes sure only one of the two uses it).
      const released = (await release(source.orgId, phone)).get(id);
      return released ?? record(message, unrouted('held'), expecting);
    },

    start() {
      unsubscribe = deps.bus.subscribe('event', (payload) => {
        // Any publisher may wake `event` without a payload: only a committed envelope counts.
        const event = payload as EventEnvelope | undefined;
        if (event?.type !== 'assistance_required') return;
        onRequestOpened(event.data as AssistanceView).catch((error: unknown) =>
          log.error({ err: error }, 'using held SMS failed'),
        );
      });
      timer = setInterval(
        () =>
          void discardExpiredHeld(db, clock()).catch((error: unknown) =>
            log.error({ err: error }, 'discarding expired SMS failed'),
          ),
        Math.max(1000, Math.min(deps.holdMs, 60_000)),
      );
    },

    stop() {
      unsubscribe();
      if (timer) clearInterval(timer);
      timer = null;
    },
  };
}
