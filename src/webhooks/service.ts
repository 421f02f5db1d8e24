import { accountFor } from '../accounts/access.js';
import { missingAccounts } from '../accounts/repo.js';
import { recordAudit } from '../audit/repo.js';
import { EVENT_TYPES, type EventType } from '../core/events.js';
import { newId } from '../core/ids.js';
import { fail, ok, type Result } from '../core/result.js';
import type { Clock } from '../core/time.js';
import type { Bus } from '../events/bus.js';
import type { Transact } from '../events/outbox.js';
import type { Principal } from '../keys/principal.js';
import type { Cipher } from '../security/cipher.js';
import type { Db } from '../store/db.js';
import type { DeliveryStatus } from '../store/schema.js';
import { accountSecretContext, endpointSecretContext, ensureSigningSecret } from './account-secret.js';
import {
  type AttemptView,
  attemptView,
  type DeliveryView,
  deliveryView,
  type EndpointView,
  endpointView,
  newDelivery,
} from './repo.js';
import { newSigningSecret } from './signing.js';
import type { UrlCheck } from './url-safety.js';

export interface EndpointInput {
  url?: string;
  events?: EventType[] | null;
  account_ids?: string[] | null;
  description?: string;
  enabled?: boolean;
}

export interface WebhooksService {
  list(principal: Principal): Promise<EndpointView[]>;
  create(
    principal: Principal,
    input: EndpointInput & { url: string },
  ): Promise<Result<EndpointView & { secret: string }>>;
  get(principal: Principal, id: string): Promise<Result<EndpointView>>;
  update(principal: Principal, id: string, input: EndpointInput): Promise<Result<EndpointView>>;
  remove(principal: Principal, id: string): Promise<Result<null>>;
  deliveries(
    principal: Principal,
    id: string,
    query: { status?: DeliveryStatus; limit: number; after: string | null },
  ): Promise<Result<{ rows: DeliveryView[]; more: boolean }>>;
  delivery(
    principal: Principal,
    id: string,
    deliveryId: string,
  ): Promise<Result<DeliveryView & { attempts: AttemptView[] }>>;
  retry(principal: Principal, id: string, deliveryId: string): Promise<Result<DeliveryView>>;
  test(principal: Principal, id: string): Promise<Result<DeliveryView>>;
  /** The account's own signing secret (created on first use); `rotate` replaces it. */
  accountSecret(principal: Principal, accountId: string, rotate: boolean): Promise<Result<{ secret: string }>>;
}

export interface WebhooksDeps {
  db: Db;
  transact: Transact;
  bus: Bus;
  cipher: Cipher;
  clock: Clock;
  checkUrl(url: string): Promise<UrlCheck>;
}

export function makeWebhooksService(deps: WebhooksDeps): WebhooksService {
  const { db, transact, clock } = deps;

  async function owned(principal: Principal, id: string) {
    const row = await db
      .selectFrom('webhook_endpoints')
      .selectAll()
      .where('org_id', '=', principal.orgId)
      .where('id', '=', id)
      .executeTakeFirst();
    if (!row) return fail('NOT_FOUND', 'webhook endpoint not found');
    // A key restricted to accounts manages only endpoints limited to those accounts.
    if (principal.accountIds) {
      const ids: string[] | null = row.account_ids ? JSON.parse(row.account_ids) : null;
      if (!ids || ids.some((a) => !principal.accountIds!.has(a)))
        return fail('FORBIDDEN', 'this key is restricted to other accounts');
    }
    return ok(row);
  }

  async function checkInput(principal: Principal, input: EndpointInput) {
    const details: { path: string; message: string }[] = [];
    if (input.url !== undefined) {
      const check = await deps.checkUrl(input.url);
      if (!check.ok) details.push({ path: '/url', message: check.reason });
    }
    const unknown = (input.events ?? []).filter((t) => !EVENT_TYPES.includes(t));
    if (unknown.length > 0) details.push({ path: '/events', message: `unknown event types: ${unknown.join(', ')}` });
    if (input.account_ids) {
      if (principal.accountIds && input.account_ids.some((a) => !principal.accountIds!.has(a))) {
        return fail('FORBIDDEN', 'this key is restricted to other accounts');
      }
      const missing = await missingAccounts(db, principal.orgId, input.account_ids);
      if (missing.length > 0)
        details.push({ path: '/account_ids', message: `no such accounts: ${missing.join(', ')}` });
    } else if (input.account_ids === null && principal.accountIds) {
      return fail('FORBIDDEN', 'a key restricted to accounts can only manage endpoints limited to them');
    }
    return details.length > 0 ? fail('VALIDATION_FAILED', 'the webhook endpoint is invalid', details) : ok(null);
  }

  async function deliveryOf(principal: Principal, id: string, deliveryId: string) {
    const endpoint = await owned(principal, id);
    if (!endpoint.ok) return endpoint;
    const row = await db
      .selectFrom('deliveries')
      .selectAll()
      .where('endpoint_id', '=', id)
      .where('id', '=', deliveryId)
      .executeTakeFirst();
    return row ? ok(row) : fail('NOT_FOUND', 'delivery not found');
  }

  return {
    async list(principal) {
      const rows = await db
        .selectFrom('webhook_endpoints')
        .selectAll()
        .where('org_id', '=', principal.orgId)
        .orderBy('id', 'desc')
        .execute();
      return rows
        .filter((row) => {
          if (!principal.accountIds) return true;
          const ids: string[] | null = row.account_ids ? JSON.parse(row.account_ids) : null;
          return ids?.every((a) => principal.accountIds!.has(a));
        })
        .map(endpointView);
    },

    async create(principal, input) {
      const checked = await checkInput(principal, { ...input, account_ids: input.account_ids ?? null });
      if (!checked.ok) return checked;
      const now = clock();
      const id = newId('whk', now);
      const secret = newSigningSecret();
      const row = {
        id,
        org_id: principal.orgId,
        url: input.url,
        events: input.events && input.events.length > 0 ? JSON.stringify(input.events) : null,
        account_ids: input.account_ids ? JSON.stringify(input.account_ids) : null,
        description: input.description ?? '',
        enabled: input.enabled === false ? 0 : 1,
        secret_enc: deps.cipher.encrypt(secret, endpointSecretContext(id)),
        failing_since: null,
        disabled_reason: null,
        created_at: now,
        updated_at: now,
      };
      await transact(async (trx) => {
        await trx.insertInto('webhook_endpoints').values(row).execute();
        await recordAudit(
          trx,
          {
            orgId: principal.orgId,
            actor: principal.actor,
            action: 'webhook.create',
            targetId: id,
            outcome: 'ok',
            details: { url: input.url },
          },
          now,
        );
      });
      return ok({ ...endpointView(row), secret });
    },

    async get(principal, id) {
      const found = await owned(principal, id);
      return found.ok ? ok(endpointView(found.value)) : found;
    },

    async update(principal, id, input) {
      const found = await owned(principal, id);
      if (!found.ok) return found;
      const checked = await checkInput(principal, input);
      if (!checked.ok) return checked;
      const now = clock();
      const set: Record<string, unknown> = { updated_at: now };
      if (input.url !== undefined) set.url = input.url;
      if (input.events !== undefined)
        set.events = input.events && input.events.length > 0 ? JSON.stringify(input.events) : null;
      if (input.account_ids !== undefined)
        set.account_ids = input.account_ids ? JSON.stringify(input.account_ids) : null;
      if (input.description !== undefined) set.description = input.description;
      if (input.enabled !== undefined) {
        set.enabled = input.enabled ? 1 : 0;
        // Turning an endpoint back on starts its failure clock afresh.
        if (input.enabled) Object.assign(set, { disabled_reason: null, failing_since: null });
      }
      await transact(async (trx, uow) => {
        await trx.updateTable('webhook_endpoints').set(set).where('id', '=', id).execute();
        await recordAudit(
          trx,
          {
            orgId: principal.orgId,
            actor: principal.actor,
            action: 'webhook.update',
            targetId: id,
            outcome: 'ok',
            details: { fields: Object.keys(input) },
          },
          now,
        );
        uow.wake('deliveries');
      });
      const row = await db.selectFrom('webhook_endpoints').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
      return ok(endpointView(row));
    },

    async remove(principal, id) {
      const found = await owned(principal, id);
      if (!found.ok) return found;
      await transact(async (trx) => {
        await trx
          .deleteFrom('delivery_attempts')
          .where('delivery_id', 'in', (q) => q.selectFrom('deliveries').select('id').where('endpoint_id', '=', id))
          .execute();
        await trx.deleteFrom('deliveries').where('endpoint_id', '=', id).execute();
        await trx.deleteFrom('webhook_endpoints').where('id', '=', id).execute();
        await recordAudit(
          trx,
          { orgId: principal.orgId, actor: principal.actor, action: 'webhook.delete', targetId: id, outcome: 'ok' },
          clock(),
        );
      });
      return ok(null);
    },

    async deliveries(principal, id, query) {
      const found = await owned(principal, id);
      if (!found.ok) return found;
      let q = db.selectFrom('deliveries').selectAll().where('endpoint_id', '=', id);
      if (query.status) q = q.where('status', '=', query.status);
      if (query.after) q = q.where('id', '<', query.after);
      const rows = await q
        .orderBy('id', 'desc')
        .limit(query.limit + 1)
        .execute();
      return ok({ rows: rows.slice(0, query.limit).map(deliveryView), more: rows.length > query.limit });
    },

    async delivery(principal, id, deliveryId) {
      const found = await deliveryOf(principal, id, deliveryId);
      if (!found.ok) return found;
      const attempts = await db
        .selectFrom('delivery_attempts')
        .selectAll()
        .where('delivery_id', '=', deliveryId)
        .orderBy('attempt')
        .execute();
      return ok({ ...deliveryView(found.value), attempts: attempts.map(attemptView) });
    },

    async retry(principal, id, deliveryId) {
      const found = await deliveryOf(principal, id, deliveryId);
      if (!found.ok) return found;
      if (found.value.status === 'succeeded')
        return fail('CONFLICT', 'this delivery already succeeded; send a test event instead');
      const now = clock();
      const queued = await transact(async (trx, uow) => {
        // Not while a sender holds it: that would send the same delivery twice at once.
        const result = await trx
          .updateTable('deliveries')
          .set({ status: 'pending', next_attempt_at: now, lease_owner: null, lease_expires_at: null, updated_at: now })
          .where('id', '=', deliveryId)
          .where((eb) => eb.or([eb('lease_owner', 'is', null), eb('lease_expires_at', '<', now)]))
          .executeTakeFirst();
        if (Number(result.numUpdatedRows) === 0) return false;
        await recordAudit(
          trx,
          {
            orgId: principal.orgId,
            actor: principal.actor,
            action: 'webhook.retry',
            targetId: deliveryId,
            outcome: 'queued',
          },
          now,
        );
        uow.wake('deliveries');
        return true;
      });
      if (!queued) return fail('CONFLICT', 'this delivery is being sent right now');
      const row = await db.selectFrom('deliveries').selectAll().where('id', '=', deliveryId).executeTakeFirstOrThrow();
      return ok(deliveryView(row));
    },

    async test(principal, id) {
      const found = await owned(principal, id);
      if (!found.ok) return found;
      const now = clock();
      const eventId = newId('evt', now);
      const deliveryId = newId('dlv', now);
      const payload = JSON.stringify({
        id: eventId,
        type: 'webhook_test',
        status: 'webhook.test',
        account_id: null,
        data: { message: 'A test event from otpilot. Answer 2xx to acknowledge it.' },
        occurred_at: new Date(now).toISOString(),
      });
      await transact(async (trx, uow) => {
        await trx
          .insertInto('deliveries')
          .values(
            newDelivery(
              {
                id: deliveryId,
                org_id: principal.orgId,
                destination: id,
                endpoint_id: id,
                // Its own line: a test never waits behind, or holds up, real events.
                account_key: `test:${deliveryId}`,
                event_id: eventId,
                event_seq: 0,
                payload,
              },
              now,
            ),
          )
          .execute();
        uow.wake('deliveries');
      });
      const row = await db.selectFrom('deliveries').selectAll().where('id', '=', deliveryId).executeTakeFirstOrThrow();
      return ok(deliveryView(row));
    },

    async accountSecret(principal, accountId, rotate) {
      const found = await accountFor(db, principal, accountId);
      if (!found.ok) return found;
      const now = clock();
      return ok(
        await transact(async (trx) => {
          const current = rotate ? null : await ensureSigningSecret(trx, deps.cipher, accountId);
          const secret = current?.secret ?? newSigningSecret();
          if (rotate)
            await trx
              .updateTable('account_config')
              .set({ signing_secret_enc: deps.cipher.encrypt(secret, accountSecretContext(accountId)) })
              .where('account_id', '=', accountId)
              .execute();
          const action = rotate ? 'rotate' : current?.created ? 'create' : 'read';
          await recordAudit(
            trx,
            {
              orgId: principal.orgId,
              actor: principal.actor,
              action: `account.signing_secret.${action}`,
              accountId,
              targetId: accountId,
              outcome: 'ok',
            },
            now,
          );
          return { secret };
        }),
      );
    },
  };
}
