import type { Kysely } from 'kysely';
import { iso } from '../core/time.js';
import { type MovementView, movementView } from '../movements/ingest.js';
import type { Database, ExpectedPaymentsTable, MovementsTable } from '../store/schema.js';
import { currencyDigits, movementMinor } from './amounts.js';
import { DEFAULT_WINDOW, type IncomingMovement, type MatchWindow, type OpenPayment } from './match.js';

export type PaymentState = 'pending' | 'matched' | 'ambiguous' | 'expired' | 'cancelled';
/** States a payment can still leave by a match. */
export const OPEN_STATES: PaymentState[] = ['pending', 'ambiguous'];

/** Reconciliation mode of an account: `match` expected payments, or forward every incoming movement. */
export type AccountMode = 'match' | 'passthrough';

export interface CandidateView {
  movement: MovementView;
  score: number;
  reasons: string[];
}

/** The expected payment of the API and of `payment_*` events. */
export interface PaymentView {
  id: string;
  external_id: string;
  account_id: string | null;
  amount: string;
  currency: string;
  payer_name: string;
  reference: string | null;
  expected_date: string | null;
  expires_at: string;
  metadata: Record<string, unknown>;
  state: PaymentState;
  source: 'api' | 'pull';
  match: {
    movement: MovementView | null;
    score: number | null;
    reasons: string[];
    matched_at: string;
    matched_by: string;
  } | null;
  candidates: CandidateView[];
  cancel_reason: string | null;
  created_at: string;
  updated_at: string;
}

type Db = Kysely<Database>;

/** Views of payment rows, with their settling movement and (ambiguous ones) their candidates, in two queries. */
export async function paymentViews(db: Db, rows: ExpectedPaymentsTable[]): Promise<PaymentView[]> {
  if (rows.length === 0) return [];
  const ambiguous = rows.filter((r) => r.state === 'ambiguous').map((r) => r.id);
  const candidates = ambiguous.length
    ? await db.selectFrom('payment_candidates').selectAll().where('payment_id', 'in', ambiguous).execute()
    : [];
  const movementIds = [
    ...new Set([
      ...rows.flatMap((r) => (r.movement_id ? [r.movement_id] : [])),
      ...candidates.map((c) => c.movement_id),
    ]),
  ];
  const movements = new Map<string, MovementsTable>();
  if (movementIds.length > 0)
    for (const m of await db.selectFrom('movements').selectAll().where('id', 'in', movementIds).execute())
      movements.set(m.id, m);
  return rows.map((row) => {
    const movement = row.movement_id ? movements.get(row.movement_id) : undefined;
    return {
      id: row.id,
      external_id: row.external_id,
      account_id: row.account_id,
      amount: row.amount,
      currency: row.currency,
      payer_name: row.payer_name,
      reference: row.reference,
      expected_date: row.expected_date,
      expires_at: iso(Number(row.expires_at)),
      metadata: JSON.parse(row.metadata) as Record<string, unknown>,
      state: row.state as PaymentState,
      source: row.source as 'api' | 'pull',
      match:
        row.state === 'matched' && row.matched_at !== null
          ? {
              movement: movement ? movementView(movement) : null,
              score: row.score,
              reasons: row.reasons ? (JSON.parse(row.reasons) as string[]) : [],
              matched_at: iso(Number(row.matched_at)),
              matched_by: row.matched_by ?? 'auto',
            }
          : null,
      candidates: candidates
        .filter((c) => c.payment_id === row.id)
        .flatMap((c) => {
          const m = movements.get(c.movement_id);
          return m ? [{ movement: movementView(m), score: c.score, reasons: JSON.parse(c.reasons) as string[] }] : [];
        })
        .sort((a, b) => b.score - a.score),
      cancel_reason: row.cancel_reason,
      created_at: iso(Number(row.created_at)),
      updated_at: iso(Number(row.updated_at)),
    };
  });
}

export async function paymentView(db: Db, row: ExpectedPaymentsTable): Promise<PaymentView> {
  return (await paymentViews(db, [row]))[0]!;
}

/** The organization's date window (the default when it never set one). */
export async function windowOf(db: Db, orgId: string): Promise<MatchWindow> {
  const row = await db.selectFrom('reconcile_org_settings').selectAll().where('org_id', '=', orgId).executeTakeFirst();
  return row ? { daysBefore: row.window_days_before, daysAfter: row.window_days_after } : DEFAULT_WINDOW;
}

/** The account's reconciliation settings row; undefined while it has the defaults. */
export function reconcileAccount(db: Db, accountId: string) {
  return db.selectFrom('reconcile_accounts').selectAll().where('account_id', '=', accountId).executeTakeFirst();
}

export async function modeOf(db: Db, accountId: string): Promise<AccountMode> {
  return ((await reconcileAccount(db, accountId))?.mode as AccountMode | undefined) ?? 'match';
}

/** Payment rows as matching reads them (bigint columns come back as strings from PostgreSQL). */
export function openPayment(row: ExpectedPaymentsTable): OpenPayment {
  return {
    id: row.id,
    account_id: row.account_id,
    amount_minor: Number(row.amount_minor),
    currency: row.currency,
    payer_name: row.payer_name,
    reference: row.reference,
    created_at: Number(row.created_at),
  };
}

/** A stored movement as matching reads it; null when its amount cannot be read exactly. */
export function incoming(row: MovementsTable): (IncomingMovement & { row: MovementsTable }) | null {
  const minor = movementMinor(row.amount, row.currency);
  if (minor === null) return null;
  return {
    id: row.id,
    account_id: row.account_id,
    amount_minor: minor,
    currency: row.currency.toUpperCase(),
    booked_at: row.booked_at,
    name: row.name,
    reference: row.reference,
    row,
  };
}

/**
 * The spellings a bank may use for one amount ("12.3", "12.30", "12.300"…), so stored movements are
 * found through an equality on their text column instead of a scan.
 */
export function amountSpellings(minor: number, currency: string): string[] {
  const digits = currencyDigits(currency) ?? 2;
  const whole = String(Math.trunc(minor / 10 ** digits));
  const fraction = String(minor % 10 ** digits)
    .padStart(digits, '0')
    .replace(/0+$/, '');
  const out = fraction === '' ? [whole] : [];
  for (let places = Math.max(1, fraction.length); places <= 4; places++)
    out.push(`${whole}.${fraction.padEnd(places, '0')}`);
  return [...out, ...out.map((s) => `+${s}`)];
}
