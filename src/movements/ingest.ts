import { createHash } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Balance, BankAccount, Movement } from '../connectors/sdk.js';
import { newId } from '../core/ids.js';
import type { UnitOfWork } from '../events/outbox.js';
import { insertRows } from '../store/bulk.js';
import type { Database, MovementsTable } from '../store/schema.js';
import { movementView } from './view.js';

// The view lives apart so the outbox can build movement envelopes without importing ingestion.
export { type MovementView, movementView } from './view.js';

/**
 * The de-duplication key: the bank's own id when it has one; otherwise a hash of the movement's
 * fields plus its rank among identical ones in the same batch, so two genuine identical payments on
 * one day stay two movements while a re-read of the same day adds nothing.
 */
export function dedupKeys(movements: Movement[]): string[] {
  const seen = new Map<string, number>();
  return movements.map((m) => {
    if (m.id) return `id:${m.bank_account_id}:${m.id}`;
    const base = [m.bank_account_id, m.booked_at, m.amount, m.currency, m.name, m.reference ?? ''].join('\u0000');
    const rank = seen.get(base) ?? 0;
    seen.set(base, rank + 1);
    return `h:${createHash('sha256').update(`${base}\u0000${rank}`).digest('base64url')}`;
  });
}

// 13 columns × 500 rows stays under SQLite's 32,766 bound parameters and PostgreSQL's 65,535.
const CHUNK = 500;

const MOVEMENT_COLUMNS = [
  'id',
  'org_id',
  'account_id',
  'bank_account_id',
  'dedup_key',
  'external_id',
  'booked_at',
  'amount',
  'currency',
  'name',
  'reference',
  'session_id',
  'created_at',
] as const satisfies readonly (keyof MovementsTable)[];

export interface IngestInput {
  orgId: string;
  accountId: string;
  sessionId: string | null;
  /** Bank's ledger id → our `bac_` id. */
  bankAccountIds: ReadonlyMap<string, string>;
  movements: Movement[];
  /** No `bank_movement` events (the account's `silent_ingestion`). */
  silent: boolean;
  now: number;
}

/**
 * Inserts new movements, skipping those already stored (unique `account_id, dedup_key`), and emits a
 * `bank_movement` event for each new one in the same transaction: a reference to the movement row,
 * not a copy of it. Returns the number inserted.
 * The hot path of every scrape: rows go in 500 at a time through one cached statement.
 */
export async function ingestMovements(trx: Kysely<Database>, uow: UnitOfWork, input: IngestInput): Promise<number> {
  const keys = dedupKeys(input.movements);
  let inserted = 0;
  for (let start = 0; start < input.movements.length; start += CHUNK) {
    const rows: MovementsTable[] = [];
    for (let i = start; i < Math.min(start + CHUNK, input.movements.length); i++) {
      const m = input.movements[i]!;
      const bankAccountId = input.bankAccountIds.get(m.bank_account_id);
      if (!bankAccountId) continue; // a movement of a ledger the bank did not list: not ours to file
      rows.push({
        id: newId('mov', input.now),
        org_id: input.orgId,
        account_id: input.accountId,
        bank_account_id: bankAccountId,
        dedup_key: keys[i]!,
        external_id: m.id,
        booked_at: m.booked_at,
        amount: m.amount,
        currency: m.currency,
        name: m.name,
        reference: m.reference,
        session_id: input.sessionId,
        created_at: input.now,
      });
    }
    if (rows.length === 0) continue;
    const added = await insertRows<{ id: string }>(
      trx,
      uow.dialect,
      'movements',
      MOVEMENT_COLUMNS,
      rows.map((row) => MOVEMENT_COLUMNS.map((column) => row[column])),
      'on conflict ("account_id", "dedup_key") do nothing returning "id"',
    );
    inserted += added.length;
    await queueIncoming(trx, uow, rows, added);
    if (!input.silent && added.length > 0) {
      const addedIds = new Set(added.map((r) => r.id));
      for (const row of rows) {
        if (addedIds.has(row.id))
          uow.emit({
            orgId: input.orgId,
            accountId: input.accountId,
            type: 'bank_movement',
            data: movementView(row),
            movementId: row.id,
          });
      }
    }
  }
  return inserted;
}

/**
 * Queues the new incoming (positive) movements for reconciliation, which runs after the commit so the
 * login's transaction only pays for one small insert.
 */
async function queueIncoming(trx: Kysely<Database>, uow: UnitOfWork, rows: MovementsTable[], added: { id: string }[]) {
  if (added.length === 0) return;
  const addedIds = new Set(added.map((r) => r.id));
  const queued = rows
    .filter((row) => addedIds.has(row.id) && !row.amount.trim().startsWith('-') && /[1-9]/.test(row.amount))
    .map((row) => [row.id, row.created_at]);
  if (queued.length === 0) return;
  await insertRows(trx, uow.dialect, 'reconcile_inbox', ['movement_id', 'created_at'], queued);
  uow.wake('reconcile');
}

/** Upserts the bank's ledgers with their balances; returns bank id → `bac_` id. */
export async function upsertBankAccounts(
  trx: Kysely<Database>,
  input: { orgId: string; accountId: string; accounts: BankAccount[]; balances: Balance[]; now: number },
): Promise<Map<string, string>> {
  const balances = new Map(input.balances.map((b) => [b.bank_account_id, b]));
  const ids = new Map<string, string>();
  for (const account of input.accounts) {
    const balance = balances.get(account.id);
    const values = {
      name: account.name,
      iban: account.iban,
      number: account.number,
      currency: account.currency,
      type: account.type,
      balance_current: balance?.current ?? null,
      balance_available: balance?.available ?? null,
      balance_as_of: balance?.as_of ?? null,
      updated_at: input.now,
    };
    const row = await trx
      .insertInto('bank_accounts')
      .values({
        id: newId('bac', input.now),
        org_id: input.orgId,
        account_id: input.accountId,
        external_id: account.id,
        created_at: input.now,
        ...values,
      })
      .onConflict((oc) => oc.columns(['account_id', 'external_id']).doUpdateSet(values))
      .returning('id')
      .executeTakeFirstOrThrow();
    ids.set(account.id, row.id);
  }
  return ids;
}
