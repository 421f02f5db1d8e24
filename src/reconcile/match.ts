import { foldReference, nameSimilarity } from './names.js';

/** An open expected payment as matching sees it. Amounts in integer minor units; times in ms. */
export interface OpenPayment {
  id: string;
  /** null: any account of the organization. */
  account_id: string | null;
  amount_minor: number;
  currency: string;
  payer_name: string;
  reference: string | null;
  /** Registration time (ms): the date window is counted from it. */
  created_at: number;
}

/** An incoming movement as matching sees it. */
export interface IncomingMovement {
  id: string;
  account_id: string;
  amount_minor: number;
  currency: string;
  /** ISO date or timestamp; only the date counts. */
  booked_at: string;
  name: string;
  reference: string | null;
}

/** Which booking dates may settle a payment, counted from its registration day. */
export interface MatchWindow {
  /** Days before registration [5]. */
  daysBefore: number;
  /** Days after registration; null = any time after [null]. */
  daysAfter: number | null;
}

export const DEFAULT_WINDOW: MatchWindow = { daysBefore: 5, daysAfter: null };

/** Why a movement fits a payment (`manual`: a person chose it). */
export type Reason = 'amount' | 'currency' | 'date_window' | 'reference' | 'name_exact' | 'name_similar' | 'manual';

export interface Score {
  /** 0..1: 0.5 to 1 with a matching reference (plus the name), 0.4 to 0.5 on the name alone. */
  score: number;
  reasons: Reason[];
  /** The payer name similarity, 0..1. */
  name: number;
}

/** A name alone settles a payment from this similarity up (0..1). */
export const NAME_THRESHOLD = 0.8;
/** Candidates whose scores differ by less than this are equally good: ambiguous, never guessed. */
export const TIE = 0.02;

const DAY_MS = 86_400_000;
const isoDate = (ms: number) => new Date(ms).toISOString().slice(0, 10);

/** Whether a booking date falls in the payment's window. */
export function inWindow(bookedAt: string, registeredAt: number, window: MatchWindow): boolean {
  const day = bookedAt.slice(0, 10);
  if (day < isoDate(registeredAt - window.daysBefore * DAY_MS)) return false;
  return window.daysAfter === null || day <= isoDate(registeredAt + window.daysAfter * DAY_MS);
}

/**
 * How well a movement settles a payment, or null when it cannot: another amount, currency or
 * account, outside the date window, references that differ when both sides have one, or (without a
 * matching reference) a payer name below NAME_THRESHOLD.
 */
export function scoreMatch(payment: OpenPayment, movement: IncomingMovement, window: MatchWindow): Score | null {
  if (payment.amount_minor !== movement.amount_minor || payment.currency !== movement.currency) return null;
  if (payment.account_id !== null && payment.account_id !== movement.account_id) return null;
  if (!inWindow(movement.booked_at, payment.created_at, window)) return null;
  const expected = foldReference(payment.reference);
  const given = foldReference(movement.reference);
  const both = expected !== '' && given !== '';
  if (both && !given.includes(expected)) return null;
  const name = nameSimilarity(payment.payer_name, movement.name);
  const reasons: Reason[] = ['amount', 'currency', 'date_window'];
  const nameReason: Reason[] = name >= 0.999 ? ['name_exact'] : name >= NAME_THRESHOLD ? ['name_similar'] : [];
  if (both) return { score: round(0.5 + 0.5 * name), reasons: [...reasons, 'reference', ...nameReason], name };
  if (name < NAME_THRESHOLD) return null;
  return { score: round(0.5 * name), reasons: [...reasons, ...nameReason], name };
}

const round = (value: number) => Math.round(value * 1000) / 1000;

export type Decision<T> =
  | { kind: 'none' }
  | { kind: 'matched'; best: T & Score }
  | { kind: 'ambiguous'; tied: (T & Score)[] };

/** The best candidate, or every candidate within TIE of the best when there are several. */
export function decide<T>(candidates: (T & Score)[]): Decision<T> {
  if (candidates.length === 0) return { kind: 'none' };
  const sorted = [...candidates].sort((a, b) => b.score - a.score);
  const best = sorted[0]!;
  const tied = sorted.filter((c) => best.score - c.score < TIE);
  return tied.length === 1 ? { kind: 'matched', best } : { kind: 'ambiguous', tied };
}

/** The decision for one incoming movement among open payments (already filtered by amount and currency). */
export function pickPayment<P extends OpenPayment>(
  movement: IncomingMovement,
  payments: readonly P[],
  window: MatchWindow,
): Decision<{ payment: P }> {
  const scored: ({ payment: P } & Score)[] = [];
  for (const payment of payments) {
    const score = scoreMatch(payment, movement, window);
    if (score) scored.push({ payment, ...score });
  }
  return decide(scored);
}

/** The decision for one payment among unclaimed movements (already filtered by amount and currency). */
export function pickMovement<M extends IncomingMovement>(
  payment: OpenPayment,
  movements: readonly M[],
  window: MatchWindow,
): Decision<{ movement: M }> {
  const scored: ({ movement: M } & Score)[] = [];
  for (const movement of movements) {
    const score = scoreMatch(payment, movement, window);
    if (score) scored.push({ movement, ...score });
  }
  return decide(scored);
}

export interface BatchResult {
  matched: number;
  ambiguous: number;
  unmatched: number;
}

/**
 * Matches a whole set in memory, movements in booking order, each against the payments still open
 * for its currency and amount (a hash lookup, so the cost grows with the movements, not their product).
 * The same rules as the live path; used to reconcile an import and by the benchmark.
 */
export function matchBatch(
  payments: readonly OpenPayment[],
  movements: readonly IncomingMovement[],
  window: MatchWindow,
): BatchResult & { pairs: Map<string, string> } {
  const open = new Map<string, OpenPayment[]>();
  for (const payment of payments) {
    const key = `${payment.currency}:${payment.amount_minor}`;
    const bucket = open.get(key);
    if (bucket) bucket.push(payment);
    else open.set(key, [payment]);
  }
  const pairs = new Map<string, string>();
  const ambiguousIds = new Set<string>();
  for (const movement of movements) {
    const bucket = open.get(`${movement.currency}:${movement.amount_minor}`);
    if (!bucket || bucket.length === 0) continue;
    const decision = pickPayment(movement, bucket, window);
    switch (decision.kind) {
      case 'none':
        break;
      case 'matched': {
        pairs.set(decision.best.payment.id, movement.id);
        bucket.splice(bucket.indexOf(decision.best.payment), 1);
        break;
      }
      case 'ambiguous':
        for (const tied of decision.tied) {
          ambiguousIds.add(tied.payment.id);
          bucket.splice(bucket.indexOf(tied.payment), 1);
        }
        break;
      default: {
        const never: never = decision;
        throw new Error(`unknown decision ${String(never)}`);
      }
    }
  }
  return {
    pairs,
    matched: pairs.size,
    ambiguous: ambiguousIds.size,
    unmatched: payments.length - pairs.size - ambiguousIds.size,
  };
}
