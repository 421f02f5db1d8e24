import { listMovements, type MovementQuery } from '../movements/query.js';
import type { Db } from '../store/db.js';
import type { DataKind } from '../store/schema.js';

/** What a data call asked for; kept with its result so a later login answers the same question. */
export type DataParams = Partial<MovementQuery> & { limit?: number };

/** Reads one kind of data from what the last successful login stored. */
export async function storedPayload(db: Db, accountId: string, kind: DataKind, params: DataParams): Promise<unknown> {
  switch (kind) {
    case 'identity': {
      const row = await db.selectFrom('accounts').select('identity').where('id', '=', accountId).executeTakeFirst();
      return { identity: row?.identity ? JSON.parse(row.identity) : null };
    }
    case 'bank_accounts': {
      const rows = await ledgers(db, accountId, params);
      return {
        accounts: rows.map((r) => ({
          id: r.id,
          name: r.name,
          iban: r.iban,
          number: r.number,
          currency: r.currency,
          type: r.type,
        })),
      };
    }
    case 'balances': {
      const rows = await ledgers(db, accountId, params);
      return {
        balances: rows.map((r) => ({
          bank_account_id: r.id,
          current: r.balance_current,
          available: r.balance_available,
          currency: r.currency,
          as_of: r.balance_as_of,
        })),
      };
    }
    case 'transactions': {
      const page = await listMovements(db, accountId, { ...params, limit: params.limit ?? 50 });
      return { transactions: page.data, next_cursor: page.next_cursor };
    }
    default: {
      const never: never = kind;
      throw new Error(`unknown data kind ${String(never)}`);
    }
  }
}

function ledgers(db: Db, accountId: string, params: DataParams) {
  let q = db.selectFrom('bank_accounts').selectAll().where('account_id', '=', accountId);
  if (params.bank_account_id) q = q.where('id', '=', params.bank_account_id);
  return q.orderBy('id').execute();
}
