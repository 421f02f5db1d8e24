import type { Logger } from 'pino';
import { accountFor } from '../accounts/access.js';
import { recordAudit } from '../audit/repo.js';
import type { ErrorDetail } from '../core/errors.js';
import { newId } from '../core/ids.js';
import { fail, ok, type Result } from '../core/result.js';
import type { Clock } from '../core/time.js';
import type { Bus } from '../events/bus.js';
import type { Transact, Tx, UnitOfWork } from '../events/outbox.js';
import { decodeCursor, page } from '../http/schemas.js';
import { canSeeAccount, type Principal } from '../keys/principal.js';
import { movementView } from '../movements/ingest.js';
import type { Db } from '../store/db.js';
import type { ExpectedPaymentsTable, MovementsTable } from '../store/schema.js';
import { duplicateIds, expiryOf, type NewPayment, parsePayment } from './input.js';
import { type MatchWindow, pickMovement, pickPayment, type Score } from './match.js';
import {
  type AccountMode,
  amountSpellings,
  incoming,
  modeOf,
  OPEN_STATES,
  openPayment,
  type PaymentState,
  type PaymentView,
  paymentView,
  paymentViews,
  windowOf,
} from './repo.js';
import type { SourceFetcher } from './source.js';

export interface ListQuery {
  limit: number;
  cursor?: string | undefined;
  state?: PaymentState | undefined;
  account_id?: string | undefined;
  external_id?: string | undefined;
}

export interface AccountSettings {
  account_id: string;
  mode: AccountMode;
  source_url: string | null;
  poll_seconds: number;
  polled_at: string | null;
  poll_error: string | null;
}

export interface OrgSettings {
  window_days_before: number;
  window_days_after: number | null;
}

export interface PollOutcome {
  created: number;
  cancelled: number;
  unchanged: number;
  error: string | null;
}

export interface ReconcileService {
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
  orgSettings(principal: Principal): Promise<OrgSettings>;
  setOrgSettings(principal: Principal, settings: OrgSettings): Promise<OrgSettings>;
  accountSettings(principal: Principal, accountId: string): Promise<Result<AccountSettings>>;
  setAccountSettings(
    principal: Principal,
    accountId: string,
    settings: { mode: AccountMode; source_url: string | null; poll_seconds: number },
  ): Promise<Result<AccountSettings>>;
  /** Polls the account's source now. */
  pollNow(principal: Principal, accountId: string): Promise<Result<PollOutcome>>;
  /** One pass of background work: queued movements, expiries, due sources. Returns what it did. */
  tick(): Promise<number>;
  start(): void;
  stop(): Promise<void>;
}

/** Default pull interval, seconds. */
export const DEFAULT_POLL_SECONDS = 300;
const INBOX_BATCH = 200;

export function makeReconcileService(deps: {
  db: Db;
  transact: Transact;
  bus: Bus;
  clock: Clock;
  log: Logger;
  pollMs: number;
  fetcher: SourceFetcher;
  checkUrl: (url: string) => Promise<{ ok: true; url: URL } | { ok: false; reason: string }>;
}): ReconcileService {
  const { db, transact, clock } = deps;

  async function emitView(
    trx: Tx,
    uow: UnitOfWork,
    row: ExpectedPaymentsTable,
    type: 'payment_matched' | 'payment_ambiguous' | 'payment_expired',
  ) {
    uow.emit({ orgId: row.org_id, accountId: row.account_id, type, data: await paymentView(trx, row) });
  }

  async function settle(
    trx: Tx,
    uow: UnitOfWork,
    paymentId: string,
    movementId: string,
    score: Score | null,
    by: string,
  ) {
    const now = clock();
    const row = await trx
      .updateTable('expected_payments')
      .set({
        state: 'matched',
        movement_id: movementId,
        score: score?.score ?? null,
        reasons: JSON.stringify(score ? score.reasons : ['manual']),
        matched_at: now,
        matched_by: by,
        updated_at: now,
      })
      .where('id', '=', paymentId)
      .where('state', 'in', OPEN_STATES)
      .returningAll()
      .executeTakeFirst();
    if (!row) return;
    await trx.deleteFrom('payment_candidates').where('payment_id', '=', paymentId).execute();
    await emitView(trx, uow, row, 'payment_matched');
    // Other payments that had this movement as a candidate lose it; left with none, they look again.
    const others = await trx
      .selectFrom('payment_candidates')
      .select('payment_id')
      .where('movement_id', '=', movementId)
      .execute();
    await trx.deleteFrom('payment_candidates').where('movement_id', '=', movementId).execute();
    for (const { payment_id } of others) {
      const left = await trx
        .selectFrom('payment_candidates')
        .select('movement_id')
        .where('payment_id', '=', payment_id)
        .executeTakeFirst();
      if (left) continue;
      const reopened = await trx
        .updateTable('expected_payments')
        .set({ state: 'pending', updated_at: now })
        .where('id', '=', payment_id)
        .where('state', '=', 'ambiguous')
        .returningAll()
        .executeTakeFirst();
      if (reopened) await matchPayment(trx, uow, reopened);
    }
  }

  async function markAmbiguous(
    trx: Tx,
    uow: UnitOfWork,
    paymentId: string,
    candidates: { movementId: string; score: Score }[],
  ) {
    const now = clock();
    for (const c of candidates)
      await trx
        .insertInto('payment_candidates')
        .values({
          payment_id: paymentId,
          movement_id: c.movementId,
          score: c.score.score,
          reasons: JSON.stringify(c.score.reasons),
        })
        .onConflict((oc) => oc.columns(['payment_id', 'movement_id']).doNothing())
        .execute();
    const row = await trx
      .updateTable('expected_payments')
      .set({ state: 'ambiguous', updated_at: now })
      .where('id', '=', paymentId)
      .where('state', 'in', OPEN_STATES)
      .returningAll()
      .executeTakeFirst();
    if (row) await emitView(trx, uow, row, 'payment_ambiguous');
  }

  /** A new (or reopened) payment looks for an unclaimed movement that settles it. */
  async function matchPayment(trx: Tx, uow: UnitOfWork, row: ExpectedPaymentsTable, known?: MatchWindow) {
    const window = known ?? (await windowOf(trx, row.org_id));
    const from = new Date(Number(row.created_at) - window.daysBefore * 86_400_000).toISOString().slice(0, 10);
    let q = trx
      .selectFrom('movements')
      .selectAll()
      .where('org_id', '=', row.org_id)
      .where('currency', '=', row.currency)
      .where('amount', 'in', amountSpellings(Number(row.amount_minor), row.currency))
      .where('booked_at', '>=', from)
      .where((eb) =>
        eb.not(
          eb.exists(
            eb.selectFrom('expected_payments as p').select('p.id').whereRef('p.movement_id', '=', 'movements.id'),
          ),
        ),
      );
    // By account, so the (account, booking date) index serves the window.
    q = row.account_id
      ? q.where('account_id', '=', row.account_id)
      : q.where('account_id', 'in', (sub) => sub.selectFrom('accounts').select('id').where('org_id', '=', row.org_id));
    const movements = (await q.limit(1000).execute()).flatMap((m) => {
      const parsed = incoming(m);
      return parsed ? [parsed] : [];
    });
    // Only accounts that match: a passthrough account's movements are forwarded, never matched.
    const passthrough = new Set<string>();
    for (const accountId of new Set(movements.map((m) => m.account_id)))
      if ((await modeOf(trx, accountId)) === 'passthrough') passthrough.add(accountId);
    const decision = pickMovement(
      openPayment(row),
      movements.filter((m) => !passthrough.has(m.account_id)),
      window,
    );
    switch (decision.kind) {
      case 'none':
        return;
      case 'matched': {
        // A movement already disputed by an ambiguous payment is not taken from it by a newcomer.
        const rivals = await trx
          .selectFrom('payment_candidates')
          .select(['payment_id', 'score'])
          .where('movement_id', '=', decision.best.movement.id)
          .execute();
        if (rivals.some((r) => decision.best.score - r.score < 0.02)) {
          await markAmbiguous(trx, uow, row.id, [{ movementId: decision.best.movement.id, score: decision.best }]);
          return;
        }
        await settle(trx, uow, row.id, decision.best.movement.id, decision.best, 'auto');
        return;
      }
      case 'ambiguous':
        await markAmbiguous(
          trx,
          uow,
          row.id,
          decision.tied.map((t) => ({ movementId: t.movement.id, score: t })),
        );
        return;
      default: {
        const never: never = decision;
        throw new Error(`unknown decision ${String(never)}`);
      }
    }
  }

  /** A newly stored incoming movement: forwarded (passthrough) or matched against open payments. */
  async function processMovement(trx: Tx, uow: UnitOfWork, movement: MovementsTable) {
    const parsed = incoming(movement);
    if (!parsed || parsed.amount_minor <= 0) return;
    if ((await modeOf(trx, movement.account_id)) === 'passthrough') {
      uow.emit({
        orgId: movement.org_id,
        accountId: movement.account_id,
        type: 'payment_received',
        data: movementView(movement),
      });
      return;
    }
    const claimed = await trx
      .selectFrom('expected_payments')
      .select('id')
      .where('movement_id', '=', movement.id)
      .executeTakeFirst();
    if (claimed) return;
    const rows = await trx
      .selectFrom('expected_payments')
      .selectAll()
      .where('org_id', '=', movement.org_id)
      .where('state', '=', 'pending')
      .where('currency', '=', parsed.currency)
      .where('amount_minor', '=', parsed.amount_minor)
      .where('expires_at', '>', clock())
      .where((eb) => eb.or([eb('account_id', 'is', null), eb('account_id', '=', movement.account_id)]))
      .execute();
    if (rows.length === 0) return;
    const byId = new Map(rows.map((r) => [r.id, r]));
    const decision = pickPayment(parsed, rows.map(openPayment), await windowOf(trx, movement.org_id));
    switch (decision.kind) {
      case 'none':
        return;
      case 'matched':
        await settle(trx, uow, decision.best.payment.id, movement.id, decision.best, 'auto');
        return;
      case 'ambiguous':
        for (const tied of decision.tied) {
          if (byId.has(tied.payment.id))
            await markAmbiguous(trx, uow, tied.payment.id, [{ movementId: movement.id, score: tied }]);
        }
        return;
      default: {
        const never: never = decision;
        throw new Error(`unknown decision ${String(never)}`);
      }
    }
  }

  function sameContent(row: ExpectedPaymentsTable, p: NewPayment): boolean {
    return (
      row.account_id === p.account_id &&
      row.amount === p.amount &&
      row.currency === p.currency &&
      row.payer_name === p.payer_name &&
      row.reference === p.reference &&
      row.expected_date === p.expected_date &&
      row.metadata === p.metadata &&
      (p.expires_at === null || Number(row.expires_at) === p.expires_at)
    );
  }

  /** Validates, then inserts what is new and matches it, in the caller's transaction. */
  async function insertPayments(
    trx: Tx,
    uow: UnitOfWork,
    orgId: string,
    payments: NewPayment[],
    source: 'api' | 'pull',
    path: string,
  ): Promise<Result<{ rows: ExpectedPaymentsTable[]; created: boolean[] }>> {
    const now = clock();
    const existing = new Map<string, ExpectedPaymentsTable>();
    for (let i = 0; i < payments.length; i += 500) {
      const ids = payments.slice(i, i + 500).map((p) => p.external_id);
      for (const row of await trx
        .selectFrom('expected_payments')
        .selectAll()
        .where('org_id', '=', orgId)
        .where('external_id', 'in', ids)
        .execute())
        existing.set(row.external_id, row);
    }
    const conflicts: ErrorDetail[] = [];
    payments.forEach((p, index) => {
      const row = existing.get(p.external_id);
      if (row && !sameContent(row, p))
        conflicts.push({
          path: `${path}/${index}/external_id`,
          message: `${p.external_id} exists already with other content (${row.id})`,
        });
    });
    if (conflicts.length > 0)
      return fail('CONFLICT', 'an expected payment with this external_id exists already with other content', conflicts);
    const window = await windowOf(trx, orgId);
    const rows: ExpectedPaymentsTable[] = [];
    const created: boolean[] = [];
    for (const p of payments) {
      const found = existing.get(p.external_id);
      if (found) {
        rows.push(found);
        created.push(false);
        continue;
      }
      const row: ExpectedPaymentsTable = {
        id: newId('pay', now),
        org_id: orgId,
        account_id: p.account_id,
        external_id: p.external_id,
        amount: p.amount,
        amount_minor: p.amount_minor,
        currency: p.currency,
        payer_name: p.payer_name,
        reference: p.reference,
        expected_date: p.expected_date,
        expires_at: expiryOf(p, now),
        metadata: p.metadata,
        state: 'pending',
        source,
        movement_id: null,
        score: null,
        reasons: null,
        matched_at: null,
        matched_by: null,
        cancel_reason: null,
        created_at: now,
        updated_at: now,
      };
      await trx.insertInto('expected_payments').values(row).execute();
      existing.set(p.external_id, row);
      await matchPayment(trx, uow, row, window);
      rows.push(row);
      created.push(true);
    }
    // Matching may have changed their state: read them back.
    const fresh = new Map<string, ExpectedPaymentsTable>();
    const ids = rows.map((r) => r.id);
    for (let i = 0; i < ids.length; i += 500)
      for (const row of await trx
        .selectFrom('expected_payments')
        .selectAll()
        .where('id', 'in', ids.slice(i, i + 500))
        .execute())
        fresh.set(row.id, row);
    return ok({ rows: rows.map((r) => fresh.get(r.id) ?? r), created });
  }

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

  const visible = (principal: Principal, row: { account_id: string | null }) =>
    row.account_id === null ? principal.accountIds === null : canSeeAccount(principal, row.account_id);

  function accountSettingsView(
    accountId: string,
    row:
      | {
          mode: string;
          source_url: string | null;
          poll_seconds: number;
          polled_at: number | null;
          poll_error: string | null;
        }
      | undefined,
  ): AccountSettings {
    return {
      account_id: accountId,
      mode: (row?.mode as AccountMode | undefined) ?? 'match',
      source_url: row?.source_url ?? null,
      poll_seconds: row?.poll_seconds ?? DEFAULT_POLL_SECONDS,
      polled_at: row?.polled_at ? new Date(Number(row.polled_at)).toISOString() : null,
      poll_error: row?.poll_error ?? null,
    };
  }

  /** Fetches an account's source and applies its list: new orders created, vanished open ones cancelled. */
  async function poll(accountId: string, orgId: string, url: string): Promise<PollOutcome> {
    const now = clock();
    const fetched = await deps.fetcher.fetchList(url, accountId);
    const record = async (error: string | null) => {
      await db
        .updateTable('reconcile_accounts')
        .set({ polled_at: now, poll_error: error })
        .where('account_id', '=', accountId)
        .execute();
    };
    if (!fetched.ok) {
      await record(fetched.error);
      return { created: 0, cancelled: 0, unchanged: 0, error: fetched.error };
    }
    const parsed: NewPayment[] = [];
    const details: ErrorDetail[] = [];
    fetched.payments.forEach((raw, index) => {
      const result = parsePayment(raw, `/payments/${index}`, now);
      if (result.ok) parsed.push({ ...result.value, account_id: accountId });
      else details.push(...result.details);
    });
    details.push(...duplicateIds(parsed, '/payments'));
    if (details.length > 0) {
      const error = `the source's list was refused: ${details
        .slice(0, 3)
        .map((d) => `${d.path} ${d.message}`)
        .join('; ')}`;
      await record(error);
      return { created: 0, cancelled: 0, unchanged: 0, error };
    }
    const outcome = await transact(async (trx, uow) => {
      const inserted = await insertPayments(trx, uow, orgId, parsed, 'pull', '/payments');
      if (!inserted.ok) return { created: 0, cancelled: 0, unchanged: 0, error: inserted.message };
      const listed = new Set(parsed.map((p) => p.external_id));
      const open = await trx
        .selectFrom('expected_payments')
        .select(['id', 'external_id'])
        .where('account_id', '=', accountId)
        .where('source', '=', 'pull')
        .where('state', 'in', OPEN_STATES)
        .execute();
      const vanished = open.filter((p) => !listed.has(p.external_id)).map((p) => p.id);
      for (let i = 0; i < vanished.length; i += 500) {
        const ids = vanished.slice(i, i + 500);
        await trx
          .updateTable('expected_payments')
          .set({ state: 'cancelled', cancel_reason: 'vanished_from_source', updated_at: now })
          .where('id', 'in', ids)
          .execute();
        await trx.deleteFrom('payment_candidates').where('payment_id', 'in', ids).execute();
      }
      const created = inserted.value.created.filter(Boolean).length;
      return { created, cancelled: vanished.length, unchanged: parsed.length - created, error: null };
    });
    await record(outcome.error);
    return outcome;
  }

  async function drainInbox(): Promise<number> {
    const queued = await db
      .selectFrom('reconcile_inbox')
      .select('movement_id')
      .orderBy('created_at')
      .limit(INBOX_BATCH)
      .execute();
    for (const { movement_id } of queued) {
      await transact(async (trx, uow) => {
        // The delete is the claim: another process that took it first leaves nothing to delete.
        const taken = await trx.deleteFrom('reconcile_inbox').where('movement_id', '=', movement_id).executeTakeFirst();
        if (Number(taken.numDeletedRows) === 0) return;
        const movement = await trx.selectFrom('movements').selectAll().where('id', '=', movement_id).executeTakeFirst();
        if (movement) await processMovement(trx, uow, movement);
      });
    }
    return queued.length;
  }

  async function expire(): Promise<number> {
    const now = clock();
    const due = await db
      .selectFrom('expected_payments')
      .select('id')
      .where('state', 'in', OPEN_STATES)
      .where('expires_at', '<=', now)
      .limit(500)
      .execute();
    if (due.length === 0) return 0;
    return transact(async (trx, uow) => {
      const rows = await trx
        .updateTable('expected_payments')
        .set({ state: 'expired', updated_at: now })
        .where(
          'id',
          'in',
          due.map((d) => d.id),
        )
        .where('state', 'in', OPEN_STATES)
        .returningAll()
        .execute();
      if (rows.length > 0)
        await trx
          .deleteFrom('payment_candidates')
          .where(
            'payment_id',
            'in',
            rows.map((r) => r.id),
          )
          .execute();
      for (const row of rows) await emitView(trx, uow, row, 'payment_expired');
      return rows.length;
    });
  }

  async function pollDue(): Promise<number> {
    const now = clock();
    const due = await db.selectFrom('reconcile_accounts').selectAll().where('source_url', 'is not', null).execute();
    let polled = 0;
    for (const row of due) {
      if (row.polled_at !== null && Number(row.polled_at) + row.poll_seconds * 1000 > now) continue;
      // Claim this round: of several processes, the one whose update lands polls.
      const claim = await db
        .updateTable('reconcile_accounts')
        .set({ polled_at: now })
        .where('account_id', '=', row.account_id)
        .where((eb) => (row.polled_at === null ? eb('polled_at', 'is', null) : eb('polled_at', '=', row.polled_at)))
        .executeTakeFirst();
      if (Number(claim.numUpdatedRows) === 0 || !row.source_url) continue;
      await poll(row.account_id, row.org_id, row.source_url);
      polled++;
    }
    return polled;
  }

  let running = false;
  let stopping: AbortController | null = null;
  let loop: Promise<void> | null = null;

  const service: ReconcileService = {
    async create(principal, raw, path) {
      const now = clock();
      const parsed: NewPayment[] = [];
      const details: ErrorDetail[] = [];
      raw.forEach((item, index) => {
        const result = parsePayment(item, raw.length === 1 && path === '' ? '' : `${path}/${index}`, now);
        if (result.ok) parsed.push(result.value);
        else details.push(...result.details);
      });
      if (details.length > 0)
        return fail('VALIDATION_FAILED', 'some expected payments are invalid; none was created', details);
      const duplicates = duplicateIds(parsed, path);
      if (duplicates.length > 0)
        return fail('VALIDATION_FAILED', 'the batch repeats an external_id; none was created', duplicates);
      for (const [index, p] of parsed.entries()) {
        const where = raw.length === 1 && path === '' ? '' : `${path}/${index}`;
        if (p.account_id === null) {
          if (principal.accountIds !== null)
            return fail('FORBIDDEN', 'a key restricted to some accounts must name the account_id', [
              { path: `${where}/account_id`, message: 'is required for this key' },
            ]);
          continue;
        }
        const account = await accountFor(db, principal, p.account_id);
        if (!account.ok)
          return fail(account.code, account.message, [{ path: `${where}/account_id`, message: account.message }]);
      }
      const attempt = () =>
        transact(async (trx, uow) => {
          const result = await insertPayments(trx, uow, principal.orgId, parsed, 'api', path);
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
      try {
        return await attempt();
      } catch (error) {
        // Two requests creating the same external_id at once: the loser finds the winner's row.
        if (!isUniqueViolation(error)) throw error;
        return attempt();
      }
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
        const score: Score | null = candidate
          ? { score: candidate.score, reasons: [...(JSON.parse(candidate.reasons) as Score['reasons'])], name: 0 }
          : null;
        const by = `${principal.actor.type}:${principal.actor.id ?? ''}`;
        await settle(
          trx,
          uow,
          id,
          movementId,
          score ? { ...score, reasons: [...score.reasons, 'manual' as never] } : null,
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

    async orgSettings(principal) {
      const window = await windowOf(db, principal.orgId);
      return { window_days_before: window.daysBefore, window_days_after: window.daysAfter };
    },

    async setOrgSettings(principal, settings) {
      const now = clock();
      await transact(async (trx) => {
        const values = {
          window_days_before: settings.window_days_before,
          window_days_after: settings.window_days_after,
          updated_at: now,
        };
        await trx
          .insertInto('reconcile_org_settings')
          .values({ org_id: principal.orgId, ...values })
          .onConflict((oc) => oc.column('org_id').doUpdateSet(values))
          .execute();
        await recordAudit(
          trx,
          {
            orgId: principal.orgId,
            actor: principal.actor,
            action: 'reconciliation.settings',
            outcome: 'ok',
            details: { ...settings },
          },
          now,
        );
      });
      return settings;
    },

    async accountSettings(principal, accountId) {
      const account = await accountFor(db, principal, accountId);
      if (!account.ok) return account;
      const row = await db
        .selectFrom('reconcile_accounts')
        .selectAll()
        .where('account_id', '=', accountId)
        .executeTakeFirst();
      return ok(accountSettingsView(accountId, row));
    },

    async setAccountSettings(principal, accountId, settings) {
      const account = await accountFor(db, principal, accountId);
      if (!account.ok) return account;
      if (settings.source_url !== null) {
        const checked = await deps.checkUrl(settings.source_url);
        if (!checked.ok)
          return fail('VALIDATION_FAILED', `source_url ${checked.reason}`, [
            { path: '/source_url', message: checked.reason },
          ]);
      }
      const now = clock();
      await transact(async (trx) => {
        const values = {
          mode: settings.mode,
          source_url: settings.source_url,
          poll_seconds: settings.poll_seconds,
          poll_error: null,
          updated_at: now,
        };
        await trx
          .insertInto('reconcile_accounts')
          .values({ account_id: accountId, org_id: principal.orgId, polled_at: null, ...values })
          .onConflict((oc) => oc.column('account_id').doUpdateSet(values))
          .execute();
        await recordAudit(
          trx,
          {
            orgId: principal.orgId,
            actor: principal.actor,
            action: 'reconciliation.account',
            accountId,
            targetId: accountId,
            outcome: 'ok',
            details: { mode: settings.mode, pull: settings.source_url !== null },
          },
          now,
        );
      });
      const row = await db
        .selectFrom('reconcile_accounts')
        .selectAll()
        .where('account_id', '=', accountId)
        .executeTakeFirst();
      return ok(accountSettingsView(accountId, row));
    },

    async pollNow(principal, accountId) {
      const account = await accountFor(db, principal, accountId);
      if (!account.ok) return account;
      const row = await db
        .selectFrom('reconcile_accounts')
        .selectAll()
        .where('account_id', '=', accountId)
        .executeTakeFirst();
      if (!row?.source_url) return fail('CONFLICT', 'this account has no source_url to poll');
      return ok(await poll(accountId, row.org_id, row.source_url));
    },

    async tick() {
      return (await drainInbox()) + (await expire()) + (await pollDue());
    },

    start() {
      if (running) return;
      running = true;
      stopping = new AbortController();
      const signal = stopping.signal;
      loop = (async () => {
        while (!signal.aborted) {
          const wait = deps.bus.waiter('reconcile', deps.pollMs, signal);
          try {
            const done = await service.tick();
            // A full inbox batch: go again at once.
            if (done >= INBOX_BATCH) {
              wait.cancel();
              continue;
            }
          } catch (error) {
            deps.log.error({ err: error }, 'reconciliation pass failed');
          }
          await wait.promise;
        }
      })();
    },

    async stop() {
      stopping?.abort();
      await loop;
      running = false;
    },
  };
  return service;
}

function isUniqueViolation(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === '23505' || code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
}
