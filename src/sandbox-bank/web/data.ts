import { DAY_MS, endOfDay, parseIsoDate } from '../movements.js';
import type { BankState } from '../state.js';
import type { AccountRow, MovementRow } from './views.js';

/** A logged-in bank user, as `BankState.sessionUser` returns it. */
export type BankUser = NonNullable<ReturnType<BankState['sessionUser']>>;

export interface BankData {
  state: BankState;
  /** Movements per page. */
  pageSize: number;
}

/** Default history of the movements page when it names no range, as the JSON API. */
const DEFAULT_RANGE_DAYS = 90;

function list(value: unknown): Record<string, unknown>[] {
  return Array.isArray(value) ? (value as Record<string, unknown>[]) : [];
}

/** The website reads what the JSON API answers, so both show the same figures. */
export async function readAccounts(data: BankData, user: BankUser): Promise<AccountRow[]> {
  const answer = await data.state.accounts(user);
  return list(answer.body).map((a) => {
    const balance = a['balance'] as { current: string };
    return {
      id: String(a['id']),
      name: String(a['name']),
      iban: String(a['iban']),
      balance: balance.current,
      currency: String(a['currency']),
    };
  });
}

export async function readAccount(data: BankData, user: BankUser, id: string): Promise<AccountRow | null> {
  return (await readAccounts(data, user)).find((a) => a.id === id) ?? null;
}

export async function readIdentity(
  data: BankData,
  user: BankUser,
): Promise<{ name: string; email: string; phone: string }> {
  const body = (await data.state.identity(user)).body as { name: string; email: string; phone: string };
  return body;
}

type MovementsResult =
  | { ok: true; movements: MovementRow[]; paging: { page: number; pages: number; query: string } }
  | { ok: false; problem: string };

/** One page of an account's movements, newest first, for `from`/`to` (YYYY-MM-DD) and `page` (from 1). */
export async function readMovements(
  data: BankData,
  user: BankUser,
  account: AccountRow,
  query: Record<string, unknown>,
): Promise<MovementsResult> {
  const day = (value: unknown) => (typeof value === 'string' ? parseIsoDate(value) : null);
  const toMs = query['to'] === undefined ? Math.floor(data.state.now() / DAY_MS) * DAY_MS : day(query['to']);
  if (toMs === null) return { ok: false, problem: 'to must be a date (YYYY-MM-DD)' };
  const fromMs = query['from'] === undefined ? toMs - DEFAULT_RANGE_DAYS * DAY_MS : day(query['from']);
  if (fromMs === null) return { ok: false, problem: 'from must be a date (YYYY-MM-DD)' };
  if (fromMs > toMs) return { ok: false, problem: 'from must not be after to' };
  const page = query['page'] === undefined ? 1 : Number(query['page']);
  if (!Number.isInteger(page) || page < 1) return { ok: false, problem: 'page must be a positive integer' };
  const answer = await data.state.transactions(user, account.id, fromMs, endOfDay(toMs));
  if (answer.status !== 200) return { ok: false, problem: 'ask for a shorter date range' };
  const all = list(answer.body) as unknown as MovementRow[];
  const pages = Math.max(1, Math.ceil(all.length / data.pageSize));
  const iso = (ms: number) => new Date(ms).toISOString().slice(0, 10);
  return {
    ok: true,
    movements: all.slice((page - 1) * data.pageSize, page * data.pageSize),
    paging: { page: Math.min(page, pages), pages, query: `from=${iso(fromMs)}&amp;to=${iso(toMs)}` },
  };
}
