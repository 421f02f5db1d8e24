import type { Logger } from 'pino';
import { pendingRequestsOf } from '../assistance/reads.js';
import { takesSms } from '../assistance/request.js';
import { type SubmitDeps, submitCode } from '../assistance/submit.js';
import type { AssistanceView } from '../assistance/view.js';
import { recordAudit } from '../audit/repo.js';
import { newId } from '../core/ids.js';
import { sameSender, toE164 } from '../core/phone.js';
import type { Bus } from '../events/bus.js';
import { makePresence, type Presence } from '../events/presence.js';
import { onEvent } from '../events/subscribe.js';
import { topics } from '../events/topics.js';
import { canSeeAccount } from '../keys/principal.js';
import type { HeldSmsTable } from '../store/schema.js';
import { accountsOnPhone, anyHeld, claimHeld, discardExpiredHeld, heldFor, insertHeld } from './repo.js';
import { codeIn, concernsRequest, eligible, relayReasonFor, type Waiting } from './routing.js';
import type { InboundSms, Message, RelayOutcome, RelayReason, SmsSource } from './types.js';

/** Routing relayed SMS to waiting requests, and holding the ones that arrive before their request. */
export interface RelayService {
  /** Routes one SMS to the one request waiting for it, or holds it, or says why not. */
  receive(source: SmsSource, sms: InboundSms): Promise<RelayOutcome>;
  /** Uses held SMS when a request opens (bus events) and drops expired ones. */
  start(): void;
  stop(): void;
}

export interface RelayDeps extends SubmitDeps {
  bus: Bus;
  log: Logger;
  /** How long an SMS that nobody waits for yet is kept, ms [OTPILOT_SMS_HOLD_SECONDS]. */
  holdMs: number;
}

const heldContext = (heldId: string) => `${heldId}:sms`;

export function makeRelayService(deps: RelayDeps): RelayService {
  const { db, transact, cipher, clock, log } = deps;
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
   * Finds the code for one waiting request in its messages and submits it through the same path as
   * every other source, as the relay's own source. Several messages (held ones) must agree.
   */
  async function answer(target: Waiting, messages: Message[]): Promise<RelayOutcome> {
    const base = { matched: true, request_id: target.request.id, submitted: false };
    const found = codeIn(target, messages);
    if ('reason' in found) return { ...base, reason: found.reason };
    const source = messages[0]!.source;
    const submitted = await submitCode(
      deps,
      { via: 'sms_relay', orgId: source.orgId, actor: source.actor },
      { accountId: target.account.account_id, requestId: target.request.id },
      found.code,
    );
    if (submitted.ok) return { ...base, submitted: true, reason: null };
    return { ...base, reason: relayReasonFor(submitted.reason) };
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

  // Nearly every request opens with nothing held: no look at all once one found nothing, until an
  // SMS is held (here or, announced on the bus, in another process). An SMS held meanwhile in another
  // process is still delivered: `receive` looks for waiting requests once more after holding it.
  let held: Presence | null = null;

  async function onRequestOpened(request: AssistanceView): Promise<void> {
    if (request.type !== 'otp' || request.descriptor.channel === 'authenticator') return;
    if (!(await held?.mayExist())) return;
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
      deps.bus.publish(topics.created('held_sms'));
      // A request may have opened between the look above and the insert, its own look finding
      // nothing held yet: look once more (the claim makes sure only one of the two uses it).
      const released = (await release(source.orgId, phone)).get(id);
      return released ?? record(message, unrouted('held'), expecting);
    },

    start() {
      held = makePresence({ bus: deps.bus, topic: topics.created('held_sms'), look: () => anyHeld(db) });
      unsubscribe = onEvent(deps.bus, ['assistance_required'], (event) => {
        onRequestOpened(event.data).catch((error: unknown) => log.error({ err: error }, 'using held SMS failed'));
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
      held?.stop();
      held = null;
      if (timer) clearInterval(timer);
      timer = null;
    },
  };
}
