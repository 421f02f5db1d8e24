import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { type Selectable, sql } from 'kysely';
import type { Logger } from 'pino';
import { RESERVED_WEBHOOK_FIELDS } from '../accounts/config.js';
import type { EventType } from '../core/events.js';
import { newId } from '../core/ids.js';
import type { Clock } from '../core/time.js';
import type { Bus } from '../events/bus.js';
import type { EventHorizon } from '../events/horizon.js';
import { type Transact, toEnvelope } from '../events/outbox.js';
import type { Cipher } from '../security/cipher.js';
import { insertRows } from '../store/bulk.js';
import type { Db, Dialect } from '../store/db.js';
import { OPEN_DELIVERY } from '../store/literals.js';
import type { DeliveriesTable, EventsTable } from '../store/schema.js';
import { newDelivery } from './repo.js';
import { DISABLE_AFTER_MS, nextAttemptAt } from './retry.js';
import type { Sender } from './sender.js';
import { accountSecretContext, endpointSecretContext } from './service.js';
import { newSigningSecret, signatureHeaders } from './signing.js';

export interface DeliveryOptions {
  db: Db;
  dialect: Dialect;
  transact: Transact;
  bus: Bus;
  cipher: Cipher;
  clock: Clock;
  random: () => number;
  log: Logger;
  sender: Sender;
  /** Fallback poll behind the wake-ups, ms. */
  pollMs: number;
  /** How long a claimed delivery is ours, ms (a crash mid-delivery means a redelivery after it). */
  leaseMs: number;
  /** Deliveries in flight at once. */
  concurrency: number;
  version: string;
  /** Events past this are not fanned out yet (an earlier one may still commit). */
  horizon: EventHorizon;
}

export interface DeliveryEngine {
  start(): void;
  stop(): Promise<void>;
  /** Runs fan-out and sending until nothing is due (tests, benchmarks). */
  drain(): Promise<void>;
}

const CURSOR_KEY = 'webhooks_dispatched_seq';
const FAN_OUT_BATCH = 500;

/** The events an account's notification endpoint gets when `notification_events` is null. */
const NOTIFICATION_DEFAULT = (type: EventType) => type !== 'bank_movement';

const DELIVERY_COLUMNS = [
  'id',
  'org_id',
  'destination',
  'endpoint_id',
  'account_key',
  'event_id',
  'event_seq',
  'status',
  'attempt',
  'next_attempt_at',
  'lease_owner',
  'lease_expires_at',
  'response_status',
  'duration_ms',
  'error',
  'payload',
  'created_at',
  'updated_at',
] as const satisfies readonly (keyof DeliveriesTable)[];

/**
 * Webhook delivery: a fan-out step turns committed outbox events into one delivery per matching
 * destination (organization endpoints, an account's notification endpoint, an account's result
 * webhook), then senders claim due deliveries with a lease, one at a time per destination and
 * account so each receiver sees an account's events in order, and retry on the api.md schedule.
 */
export function makeDeliveryEngine(options: DeliveryOptions): DeliveryEngine {
  const { db, clock, log } = options;
  const owner = `dlv_${hostname()}_${process.pid}_${randomBytes(4).toString('hex')}`;
  const inFlight = new Set<Promise<void>>();
  const timers: NodeJS.Timeout[] = [];
  const unsubscribe: (() => void)[] = [];
  let running = false;
  let fanning = false;
  let fanAgain = false;
  let sending = false;
  let sendAgain = false;

  /** Fan-out: new outbox events → deliveries, and the cursor, in one transaction. */
  async function fanOut(): Promise<number> {
    return options.transact(async (trx, uow) => {
      // One fan-out at a time across processes; one that finds another at it leaves the work to it.
      if (uow.dialect === 'postgres') {
        const { rows } = await sql<{ ok: boolean }>`
          select pg_try_advisory_xact_lock(hashtext('otpilot:fan-out:' || current_schema())) as ok
        `.execute(trx);
        if (rows[0]?.ok !== true) return 0;
      }
      const upTo = await options.horizon.limit();
      const cursorRow = await trx
        .selectFrom('settings')
        .select('value')
        .where('key', '=', CURSOR_KEY)
        .executeTakeFirst();
      const cursor = cursorRow ? Number(cursorRow.value) : 0;
      const events = await trx
        .selectFrom('events')
        .selectAll()
        .where('seq', '>', cursor)
        .where('seq', '<=', upTo)
        .orderBy('seq')
        .limit(FAN_OUT_BATCH)
        .execute();
      if (events.length === 0) return 0;
      const orgIds = [...new Set(events.map((e) => e.org_id))];
      const accountIds = [...new Set(events.map((e) => e.account_id).filter((a): a is string => a !== null))];
      const endpoints = await trx
        .selectFrom('webhook_endpoints')
        .selectAll()
        .where('org_id', 'in', orgIds)
        .where('enabled', '=', 1)
        .execute();
      const configs =
        accountIds.length > 0
          ? await trx
              .selectFrom('account_config')
              .select(['account_id', 'notification_endpoint_url', 'notification_events', 'webhook_url'])
              .where('account_id', 'in', accountIds)
              .where((eb) =>
                eb.or([eb('notification_endpoint_url', 'is not', null), eb('webhook_url', 'is not', null)]),
              )
              .execute()
          : [];
      const configByAccount = new Map(configs.map((c) => [c.account_id, c]));
      const now = clock();
      const rows: unknown[][] = [];
      const add = (event: Selectable<EventsTable>, destination: string, endpointId: string | null) => {
        const row = newDelivery(
          {
            id: newId('dlv', now),
            org_id: event.org_id,
            destination,
            endpoint_id: endpointId,
            account_key: event.account_id ?? '',
            event_id: event.id,
            event_seq: event.seq,
            payload: null,
          },
          now,
        );
        rows.push(DELIVERY_COLUMNS.map((column) => row[column]));
      };
      for (const event of events) {
        const type = event.type as EventType;
        for (const endpoint of endpoints) {
          if (endpoint.org_id !== event.org_id) continue;
          if (endpoint.events && !(JSON.parse(endpoint.events) as string[]).includes(type)) continue;
          if (
            endpoint.account_ids &&
            (event.account_id === null || !(JSON.parse(endpoint.account_ids) as string[]).includes(event.account_id))
          )
            continue;
          add(event, endpoint.id, endpoint.id);
        }
        const config = event.account_id ? configByAccount.get(event.account_id) : undefined;
        if (config?.notification_endpoint_url) {
          const wanted = config.notification_events
            ? (JSON.parse(config.notification_events) as string[]).includes(type)
            : NOTIFICATION_DEFAULT(type);
          if (wanted) add(event, `notify:${event.account_id}`, null);
        }
        if (config?.webhook_url && type === 'bank_movement') add(event, `result:${event.account_id}`, null);
      }
      const last = events[events.length - 1]!.seq;
      for (let i = 0; i < rows.length; i += 500)
        await insertRows(trx, uow.dialect, 'deliveries', DELIVERY_COLUMNS, rows.slice(i, i + 500));
      await trx
        .insertInto('settings')
        .values({ key: CURSOR_KEY, value: String(last) })
        .onConflict((oc) => oc.column('key').doUpdateSet({ value: String(last) }))
        .execute();
      if (rows.length > 0) uow.wake('deliveries');
      return events.length;
    });
  }

  /** Due deliveries at the head of their line (destination × account), claimed with a lease. */
  async function claim(limit: number): Promise<DeliveriesTable[]> {
    const now = clock();
    const due = await db
      .selectFrom('deliveries as d')
      .select('d.id')
      .where('d.status', 'in', OPEN_DELIVERY)
      .where('d.next_attempt_at', '<=', now)
      .where((eb) => eb.or([eb('d.lease_owner', 'is', null), eb('d.lease_expires_at', '<', now)]))
      .where(({ not, exists, selectFrom }) =>
        not(
          exists(
            selectFrom('deliveries as e')
              .select('e.id')
              .whereRef('e.destination', '=', 'd.destination')
              .whereRef('e.account_key', '=', 'd.account_key')
              .where('e.status', 'in', OPEN_DELIVERY)
              .whereRef('e.event_seq', '<', 'd.event_seq'),
          ),
        ),
      )
      .orderBy('d.next_attempt_at')
      .limit(limit)
      .execute();
    if (due.length === 0) return [];
    return db
      .updateTable('deliveries')
      .set({ lease_owner: owner, lease_expires_at: now + options.leaseMs })
      .where(
        'id',
        'in',
        due.map((d) => d.id),
      )
      .where((eb) => eb.or([eb('lease_owner', 'is', null), eb('lease_expires_at', '<', now)]))
      .returningAll()
      .execute();
  }

  interface Target {
    url: string;
    secret: string;
    authorization: string | null;
    extra: Record<string, unknown> | null;
  }

  /** Where and how to send; null when the destination is gone or disabled. */
  async function target(delivery: DeliveriesTable): Promise<Target | null> {
    if (delivery.endpoint_id) {
      const endpoint = await db
        .selectFrom('webhook_endpoints')
        .selectAll()
        .where('id', '=', delivery.endpoint_id)
        .executeTakeFirst();
      if (endpoint?.enabled !== 1) return null;
      return {
        url: endpoint.url,
        secret: options.cipher.decrypt(endpoint.secret_enc, endpointSecretContext(endpoint.id)),
        authorization: null,
        extra: null,
      };
    }
    const [kind, accountId] = delivery.destination.split(':') as ['notify' | 'result', string];
    const config = await db
      .selectFrom('account_config')
      .selectAll()
      .where('account_id', '=', accountId)
      .executeTakeFirst();
    if (!config) return null;
    const url = kind === 'notify' ? config.notification_endpoint_url : config.webhook_url;
    if (!url) return null;
    const authType = kind === 'notify' ? config.notification_auth_type : config.webhook_auth_type;
    const tokenEnc = kind === 'notify' ? config.notification_auth_token_enc : config.webhook_auth_token_enc;
    const field = kind === 'notify' ? 'notification_auth_token' : 'webhook_auth_token';
    const token = tokenEnc ? options.cipher.decrypt(tokenEnc, `${accountId}:${field}`) : null;
    const authorization = token && authType ? `${authType === 'bearer' ? 'Bearer' : 'Api-Key'} ${token}` : null;
    let secretEnc = config.signing_secret_enc;
    if (!secretEnc) {
      // First delivery for this account: give it its signing secret (readable at /v1/accounts/:id/signing-secret).
      secretEnc = options.cipher.encrypt(newSigningSecret(), accountSecretContext(accountId));
      await db
        .updateTable('account_config')
        .set({ signing_secret_enc: secretEnc })
        .where('account_id', '=', accountId)
        .where('signing_secret_enc', 'is', null)
        .execute();
      secretEnc = (
        await db
          .selectFrom('account_config')
          .select('signing_secret_enc')
          .where('account_id', '=', accountId)
          .executeTakeFirstOrThrow()
      ).signing_secret_enc!;
    }
    const extra =
      kind === 'result' && config.webhook_extra_fields
        ? (JSON.parse(config.webhook_extra_fields) as Record<string, unknown>)
        : null;
    return { url, secret: options.cipher.decrypt(secretEnc, accountSecretContext(accountId)), authorization, extra };
  }

  async function body(delivery: DeliveriesTable, extra: Record<string, unknown> | null): Promise<string | null> {
    if (delivery.payload) return delivery.payload;
    const event = await db.selectFrom('events').selectAll().where('id', '=', delivery.event_id).executeTakeFirst();
    if (!event) return null;
    const envelope = toEnvelope(event);
    if (!extra) return JSON.stringify(envelope);
    const safe = Object.fromEntries(
      Object.entries(extra).filter(([k]) => !(RESERVED_WEBHOOK_FIELDS as readonly string[]).includes(k)),
    );
    return JSON.stringify({ ...safe, ...envelope });
  }

  async function deliver(delivery: DeliveriesTable): Promise<void> {
    const to = await target(delivery);
    const payload = to ? await body(delivery, to.extra) : null;
    const now = clock();
    if (!to || payload === null) {
      await db
        .updateTable('deliveries')
        .set({
          status: 'dead',
          error: to ? 'the event no longer exists' : 'the destination was removed or disabled',
          lease_owner: null,
          lease_expires_at: null,
          updated_at: now,
        })
        .where('id', '=', delivery.id)
        .where('lease_owner', '=', owner)
        .execute();
      return;
    }
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'user-agent': `otpilot/${options.version}`,
      ...signatureHeaders(to.secret, delivery.event_id, now, payload),
    };
    if (to.authorization) headers.authorization = to.authorization;
    const result = await options.sender.post(to.url, headers, payload);
    const at = clock();
    const attempt = delivery.attempt + 1;
    const succeeded = result.status !== null && result.status >= 200 && result.status < 300;
    const next = succeeded ? null : nextAttemptAt(attempt, at, options.random());
    const status = succeeded ? 'succeeded' : next === null ? 'dead' : 'failed';
    let disabled: { orgId: string; id: string; url: string } | null = null;
    await options.transact(async (trx, uow) => {
      const updated = await trx
        .updateTable('deliveries')
        .set({
          status,
          attempt,
          next_attempt_at: next,
          response_status: result.status,
          duration_ms: result.durationMs,
          error: result.error ?? (succeeded ? null : `HTTP ${result.status}`),
          lease_owner: null,
          lease_expires_at: null,
          updated_at: at,
        })
        .where('id', '=', delivery.id)
        .where('lease_owner', '=', owner)
        .executeTakeFirst();
      if (Number(updated.numUpdatedRows) === 0) return; // lease lost: the next holder records its own attempt
      await trx
        .insertInto('delivery_attempts')
        .values({
          id: newId('dlv', at),
          delivery_id: delivery.id,
          attempt,
          response_status: result.status,
          duration_ms: result.durationMs,
          error: result.error,
          response_body: result.body,
          created_at: at,
        })
        .execute();
      if (!delivery.endpoint_id) return;
      if (succeeded) {
        await trx
          .updateTable('webhook_endpoints')
          .set({ failing_since: null })
          .where('id', '=', delivery.endpoint_id)
          .where('failing_since', 'is not', null)
          .execute();
        return;
      }
      await trx
        .updateTable('webhook_endpoints')
        .set({ failing_since: at })
        .where('id', '=', delivery.endpoint_id)
        .where('failing_since', 'is', null)
        .execute();
      const endpoint = await trx
        .selectFrom('webhook_endpoints')
        .select(['org_id', 'url', 'failing_since', 'enabled'])
        .where('id', '=', delivery.endpoint_id)
        .executeTakeFirst();
      if (
        endpoint &&
        endpoint.enabled === 1 &&
        endpoint.failing_since !== null &&
        at - endpoint.failing_since >= DISABLE_AFTER_MS
      ) {
        const reason = 'every delivery failed for 5 days';
        await trx
          .updateTable('webhook_endpoints')
          .set({ enabled: 0, disabled_reason: reason, updated_at: at })
          .where('id', '=', delivery.endpoint_id)
          .execute();
        uow.emit({
          orgId: endpoint.org_id,
          accountId: null,
          type: 'webhook_endpoint_disabled',
          data: { id: delivery.endpoint_id, url: endpoint.url, reason },
        });
        disabled = { orgId: endpoint.org_id, id: delivery.endpoint_id, url: endpoint.url };
      }
    });
    if (disabled)
      log.warn({ endpoint_id: (disabled as { id: string }).id }, 'webhook endpoint disabled after 5 days of failures');
    // The next delivery in this line may be due now.
    if (status !== 'failed') options.bus.publish('deliveries');
  }

  /** The claiming pass running now, if any (stop waits for it before the store closes). */
  let sendPass: Promise<void> = Promise.resolve();

  function send(): Promise<void> {
    if (!running) return Promise.resolve();
    if (sending) {
      sendAgain = true;
      return sendPass;
    }
    sending = true;
    sendPass = sendLoop();
    return sendPass;
  }

  async function sendLoop(): Promise<void> {
    try {
      do {
        sendAgain = false;
        while (running && inFlight.size < options.concurrency) {
          const claimed = await claim(options.concurrency - inFlight.size);
          for (const delivery of claimed) {
            const task: Promise<void> = deliver(delivery)
              .catch((error: unknown) =>
                log.error({ err: error, delivery_id: delivery.id }, 'webhook delivery crashed'),
              )
              .finally(() => {
                inFlight.delete(task);
                void send();
              });
            inFlight.add(task);
          }
          if (claimed.length === 0) break;
        }
      } while (sendAgain && running);
    } catch (error) {
      log.error({ err: error }, 'claiming deliveries failed');
    } finally {
      sending = false;
    }
  }

  /** The fan-out pass running now, if any (stop waits for it before the store closes). */
  let fanPass: Promise<void> = Promise.resolve();

  function fan(): Promise<void> {
    if (!running) return Promise.resolve();
    if (fanning) {
      fanAgain = true;
      return fanPass;
    }
    fanning = true;
    fanPass = fanLoop();
    return fanPass;
  }

  async function fanLoop(): Promise<void> {
    try {
      do {
        fanAgain = false;
        while ((await fanOut()) === FAN_OUT_BATCH) {
          // a full batch: there may be more
        }
      } while (fanAgain && running);
    } catch (error) {
      log.error({ err: error }, 'webhook fan-out failed');
    } finally {
      fanning = false;
    }
  }

  return {
    start() {
      running = true;
      unsubscribe.push(options.bus.subscribe('event', () => void fan()));
      unsubscribe.push(options.bus.subscribe('deliveries', () => void send()));
      timers.push(
        setInterval(() => {
          void fan();
          void send();
        }, options.pollMs),
      );
      void fan().then(() => send());
    },
    async stop() {
      running = false;
      for (const off of unsubscribe) off();
      for (const timer of timers) clearInterval(timer);
      await Promise.allSettled([fanPass, sendPass]);
      await Promise.allSettled([...inFlight]);
      await options.sender.close();
    },
    async drain() {
      await fan();
      await send();
      await Promise.allSettled([...inFlight]);
    },
  };
}
