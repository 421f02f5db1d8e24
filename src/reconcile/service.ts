import { accountFor } from '../accounts/access.js';
import { recordAudit } from '../audit/repo.js';
import type { ErrorDetail } from '../core/errors.js';
import { type Failure, fail, ok, type Result } from '../core/result.js';
import { decodeCursor, page } from '../http/schemas.js';
import { canSeeAccount, type Principal } from '../keys/principal.js';
import { onceMoreIfDuplicate } from '../store/errors.js';
import type { ExpectedPaymentsTable } from '../store/schema.js';
import { duplicateIds, type NewPayment, parsePayment } from './input.js';
import type { Reason } from './match.js';
import { makeMatcher } from './matcher.js';
import { OPEN_STATES, type PaymentState, type PaymentView, paymentView, paymentViews } from './repo.js';
import { makeReconcileSettings, type ReconcileSettings } from './settings.js';
import { makeReconcileWorker, type PollOutcome, type WorkerDeps } from './worker.js';

export interface ListQuery {
  limit: number;
  cursor?: string | undefined;
  state?: PaymentState | undefined;
  account_id?: string | undefined;
  external_id?: string | undefined;
}

export type { AccountSettings, OrgSettings } from './settings.js';
export type { PollOutcome };

/** Expected payments (create, list, cancel, resolve by hand) and the settings and pulls behind them. */
export interface ReconcileService extends ReconcileSettings {
  /** Creates payments (all or none); `created[i]` is false when an identical one existed already. */
  create(
    principal: Principal,
    raw: unknown[],
    path: string,
  ): Promise<Result<{ payments: PaymentView[]; created: boolean[] }>>;
  list(principal: Principal, query: ListQuery): Promise<{ data: PaymentView[]; next_cursor: string | null }>;
  get(principal: Principal, id: string): Promise<Result<PaymentView>>;
  cancel(principal: Principal, id: string): Promise<Result<PaymentView>>;
  /** A human picks the movement that settles a pending or ambiguous payment. */
  resolve(principal: Principal, id: string, movementId: string): Promise<Result<PaymentView>>;
  start(): void;
  stop(): Promise<void>;
}

export function makeReconcileService(
  deps: WorkerDeps & {
    checkUrl: (url: string) => Promise<{ ok: true; url: URL } | { ok: false; reason: string }>;
  },
): ReconcileService {
  const { db, transact, clock } = deps;

  const matcher = makeMatcher({ clock });
  const worker = makeReconcileWorker({ ...deps, matcher });
  const settings = makeReconcileSettings({ ...deps, worker });

  async function visiblePayment(principal: Principal, id: string): Promise<Result<ExpectedPaymentsTable>> {
    const row = await db
      .selectFrom('expected_payments')
      .selectAll()
      .where('org_id', '=', principal.orgId)
      .where('id', '=', id)
      .executeTakeFirst();
    if (!row) return fail('NOT_FOUND', 'expected payment not found');
    if (!visible(principal, row)) return fail('FORBIDDEN', 'this key is restricted to other accounts');
    return ok(row);
  }

  /** The first account a caller may not use for these payments (each account is looked up once). */
  async function refuseAccounts(
    principal: Principal,
    payments: NewPayment[],
    itemPath: (index: number) => string,
  ): Promise<Failure | null> {
    const checked = new Map<string, Failure | null>();
    for (const [index, p] of payments.entries()) {
      if (p.account_id === null) {
        if (principal.accountIds !== null)
          return fail('FORBIDDEN', 'a key restricted to some accounts must name the account_id', [
            { path: `${itemPath(index)}/account_id`, message: 'is required for this key' },
          ]);
        continue;
      }
      let refusal = checked.get(p.account_id);
      if (refusal === undefined) {
        const account = await accountFor(db, principal, p.account_id);
        refusal = account.ok ? null : account;
        checked.set(p.account_id, refusal);
      }
      if (refusal)
        return fail(refusal.code, refusal.message, [
          { path: `${itemPath(index)}/account_id`, message: refusal.message },
        ]);
    }
    return null;
  }

  const visible = (principal: Principal, row: { account_id: string | null }) =>
    row.account_id === null ? principal.accountIds === null : canSeeAccount(principal, row.account_id);

  const service: ReconcileService = {
    async create(principal, raw, path) {
      const now = clock();
      const parsed: NewPayment[] = [];
      const details: ErrorDetail[] = [];
      // A single create reports `/amount`; a batch `/payments/3/amount`.
      const itemPath = (index: number) => (path === '' ? '' : `${path}/${index}`);
      raw.forEach((item, index) => {
        const result = parsePayment(item, itemPath(index), now);
        if (result.ok) parsed.push(result.value);
        else details.push(...result.details);
      });
      if (details.length > 0)
        return fail('VALIDATION_FAILED', 'some expected payments are invalid; none was created', details);
      const duplicates = duplicateIds(parsed, path);
      if (duplicates.length > 0)
        return fail('VALIDATION_FAILED', 'the batch repeats an external_id; none was created', duplicates);
      const refused = await refuseAccounts(principal, parsed, itemPath);
      if (refused) return refused;
      const attempt = () =>
        transact(async (trx, uow) => {
          const result = await matcher.insertPayments(trx, uow, principal.orgId, parsed, 'api', itemPath);
          if (!result.ok) return result;
          const created = result.value.created.filter(Boolean).length;
          if (created > 0)
            await recordAudit(
              trx,
              {
                orgId: principal.orgId,
                actor: principal.actor,
                action: 'expected_payment.create',
                outcome: 'ok',
                details: { created },
              },
              now,
            );
          return ok({ payments: await paymentViews(trx, result.value.rows), created: result.value.created });
        });
      // Two requests creating the same external_id at once: the loser finds the winner's row.
      return onceMoreIfDuplicate(attempt);
    },

    async list(principal, query) {
      let q = db.selectFrom('expected_payments').selectAll().where('org_id', '=', principal.orgId);
      if (query.state) q = q.where('state', '=', query.state);
      if (query.account_id) q = q.where('account_id', '=', query.account_id);
      if (query.external_id) q = q.where('external_id', '=', query.external_id);
      if (principal.accountIds !== null) {
        const ids = [...principal.accountIds];
        q = ids.length > 0 ? q.where('account_id', 'in', ids) : q.where('account_id', '=', '');
      }
      const after = decodeCursor(query.cursor);
      if (after) q = q.where('id', '<', after);
      const rows = await q
        .orderBy('id', 'desc')
        .limit(query.limit + 1)
        .execute();
      const listed = page(rows, query.limit, (r) => r);
      return { data: await paymentViews(db, listed.data), next_cursor: listed.next_cursor };
    },

    async get(principal, id) {
      const row = await visiblePayment(principal, id);
      return row.ok ? ok(await paymentView(db, row.value)) : row;
    },

    async cancel(principal, id) {
      const found = await visiblePayment(principal, id);
      if (!found.ok) return found;
      const now = clock();
      return transact(async (trx) => {
        const row = await trx
          .updateTable('expected_payments')
          .set({ state: 'cancelled', cancel_reason: 'cancelled_by_caller', updated_at: now })
          .where('id', '=', id)
          .where('state', 'in', OPEN_STATES)
          .returningAll()
          .executeTakeFirst();
        if (!row)
          return fail(
            'CONFLICT',
            `the expected payment is ${found.value.state}; only pending or ambiguous ones can be cancelled`,
          );
        await trx.deleteFrom('payment_candidates').where('payment_id', '=', id).execute();
        await recordAudit(
          trx,
          {
            orgId: principal.orgId,
            actor: principal.actor,
            action: 'expected_payment.cancel',
            accountId: row.account_id,
            targetId: id,
            outcome: 'ok',
          },
          now,
        );
        return ok(await paymentView(trx, row));
      });
    },

    async resolve(principal, id, movementId) {
      const found = await visiblePayment(principal, id);
      if (!found.ok) return found;
      const payment = found.value;
      if (payment.state !== 'pending' && payment.state !== 'ambiguous')
        return fail(
          'CONFLICT',
          `the expected payment is ${payment.state}; only pending or ambiguous ones can be resolved`,
        );
      const movement = await db
        .selectFrom('movements')
        .selectAll()
        .where('org_id', '=', principal.orgId)
        .where('id', '=', movementId)
        .executeTakeFirst();
      if (!movement || !canSeeAccount(principal, movement.account_id)) return fail('NOT_FOUND', 'movement not found');
      if (payment.account_id !== null && payment.account_id !== movement.account_id)
        return fail('VALIDATION_FAILED', 'the movement belongs to another account than the expected payment', [
          { path: '/movement_id', message: 'is not a movement of the payment’s account' },
        ]);
      const now = clock();
      return transact(async (trx, uow) => {
        const claimed = await trx
          .selectFrom('expected_payments')
          .select('id')
          .where('movement_id', '=', movementId)
          .executeTakeFirst();
        if (claimed) return fail('CONFLICT', `the movement settles another expected payment already (${claimed.id})`);
        const candidate = await trx
          .selectFrom('payment_candidates')
          .selectAll()
          .where('payment_id', '=', id)
          .where('movement_id', '=', movementId)
          .executeTakeFirst();
        const by = `${principal.actor.type}:${principal.actor.id ?? ''}`;
        // A candidate keeps its score and reasons; any other movement is the person's call alone.
        const reasons: Reason[] = candidate ? (JSON.parse(candidate.reasons) as Reason[]) : [];
        await matcher.settle(
          trx,
          uow,
          id,
          movementId,
          { score: candidate?.score ?? null, reasons: [...reasons, 'manual'] },
          by,
        );
        const row = await trx
          .selectFrom('expected_payments')
          .selectAll()
          .where('id', '=', id)
          .executeTakeFirstOrThrow();
        if (row.state !== 'matched' || row.movement_id !== movementId)
          return fail(
            'CONFLICT',
            `the expected payment is ${row.state}; only pending or ambiguous ones can be resolved`,
          );
        await recordAudit(
          trx,
          {
            orgId: principal.orgId,
            actor: principal.actor,
            action: 'expected_payment.resolve',
            accountId: row.account_id,
            targetId: id,
            outcome: 'ok',
            details: { movement_id: movementId },
          },
          now,
        );
        return ok(await paymentView(trx, row));
      });
    },

    ...settings,

    start: () => worker.start(),
    stop: () => worker.stop(),
  };
  return service;
}
