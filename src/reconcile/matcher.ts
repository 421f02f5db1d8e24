import type { ErrorDetail } from '../core/errors.js';
import { newId } from '../core/ids.js';
import { fail, ok, type Result } from '../core/result.js';
import type { Clock } from '../core/time.js';
import type { Tx, UnitOfWork } from '../events/outbox.js';
import { movementView } from '../movements/ingest.js';
import type { ExpectedPaymentsTable, MovementsTable } from '../store/schema.js';
import { expiryOf, type NewPayment } from './input.js';
import { type MatchWindow, pickMovement, pickPayment, type Reason, type Score, TIE } from './match.js';
import { amountSpellings, incoming, modeOf, OPEN_STATES, openPayment, paymentView, windowOf } from './repo.js';

/** The matching steps, each inside the caller's transaction (events go out with its commit). */
export type Matcher = ReturnType<typeof makeMatcher>;

export function makeMatcher(deps: { clock: Clock }) {
  const { clock } = deps;

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
    verdict: { score: number | null; reasons: Reason[] },
    by: string,
  ) {
    const now = clock();
    const row = await trx
      .updateTable('expected_payments')
      .set({
        state: 'matched',
        movement_id: movementId,
        score: verdict.score,
        reasons: JSON.stringify(verdict.reasons),
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
        if (rivals.some((r) => decision.best.score - r.score < TIE)) {
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

  /** A passthrough account's incoming movement, forwarded as it is. */
  function forward(uow: UnitOfWork, movement: MovementsTable) {
    const parsed = incoming(movement);
    if (!parsed || parsed.amount_minor <= 0) return;
    uow.emit({
      orgId: movement.org_id,
      accountId: movement.account_id,
      type: 'payment_received',
      data: movementView(movement),
      movementId: movement.id,
    });
  }

  /** A newly stored incoming movement of a matching account looks for the open payment it settles. */
  async function processMovement(trx: Tx, uow: UnitOfWork, movement: MovementsTable) {
    const parsed = incoming(movement);
    if (!parsed || parsed.amount_minor <= 0) return;
    const claimed = await trx
      .selectFrom('expected_payments')
      .select('id')
      .where('movement_id', '=', movement.id)
      .executeTakeFirst();
    if (claimed) return;
    const open = await trx
      .selectFrom('expected_payments')
      .selectAll()
      .where('org_id', '=', movement.org_id)
      .where('state', '=', 'pending')
      .where('currency', '=', parsed.currency)
      .where('amount_minor', '=', parsed.amount_minor)
      .execute();
    // Account and expiry are checked here, not in SQL: equalities only keep the planner on the
    // (org, state, currency, amount) index; an OR or a range would steer it to one that reads every open payment.
    const now = clock();
    const rows = open.filter(
      (r) => (r.account_id === null || r.account_id === movement.account_id) && Number(r.expires_at) > now,
    );
    if (rows.length === 0) return;
    const decision = pickPayment(parsed, rows.map(openPayment), await windowOf(trx, movement.org_id));
    switch (decision.kind) {
      case 'none':
        return;
      case 'matched':
        await settle(trx, uow, decision.best.payment.id, movement.id, decision.best, 'auto');
        return;
      case 'ambiguous':
        for (const tied of decision.tied)
          await markAmbiguous(trx, uow, tied.payment.id, [{ movementId: movement.id, score: tied }]);
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
    itemPath: (index: number) => string,
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
          path: `${itemPath(index)}/external_id`,
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

  return { emitView, settle, matchPayment, forward, processMovement, insertPayments };
}
