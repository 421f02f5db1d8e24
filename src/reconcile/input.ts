import type { ErrorDetail } from '../core/errors.js';
import { currencyDigits, fromMinor, toMinor } from './amounts.js';

/** What a caller (or a pull source) sends for one expected payment. */
export interface PaymentInput {
  external_id: string;
  account_id?: string | null;
  amount: string;
  currency: string;
  payer_name: string;
  reference?: string | null;
  expected_date?: string | null;
  expires_at?: string | null;
  metadata?: Record<string, unknown> | null;
}

/** A validated expected payment, ready to store. */
export interface NewPayment {
  external_id: string;
  account_id: string | null;
  amount: string;
  amount_minor: number;
  currency: string;
  payer_name: string;
  reference: string | null;
  expected_date: string | null;
  /** ms; null = the default (registration + DEFAULT_EXPIRY_DAYS). */
  expires_at: number | null;
  metadata: string;
}

/** Days after registration (or after `expected_date` when later) an unpaid payment expires. */
export const DEFAULT_EXPIRY_DAYS = 30;
/** Most payments one batch create (or one pull) may carry. */
export const MAX_BATCH = 1000;
const MAX_METADATA = 4096;

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

function text(value: unknown, max: number): string | null {
  return typeof value === 'string' && value.trim() !== '' && value.length <= max ? value.trim() : null;
}

/**
 * Checks one payment from an untrusted source (the API body or a pull source's list): every problem
 * is reported with its path, nothing is coerced silently. Amounts are exact decimal strings, positive.
 */
export function parsePayment(
  raw: unknown,
  path: string,
  now: number,
): { ok: true; value: NewPayment } | { ok: false; details: ErrorDetail[] } {
  const details: ErrorDetail[] = [];
  const bad = (field: string, message: string) => details.push({ path: `${path}/${field}`, message });
  if (!isObject(raw)) return { ok: false, details: [{ path: path || '/', message: 'must be an object' }] };
  const externalId = text(raw.external_id, 128);
  if (externalId === null) bad('external_id', 'must be a non-empty string of at most 128 characters');
  let accountId: string | null = null;
  if (raw.account_id !== undefined && raw.account_id !== null) {
    accountId = text(raw.account_id, 64);
    if (accountId === null) bad('account_id', 'must be an account id');
  }
  const currency = typeof raw.currency === 'string' ? raw.currency.trim().toUpperCase() : '';
  const digits = currencyDigits(currency);
  if (digits === null) bad('currency', 'must be a known ISO 4217 currency code (e.g. EUR)');
  let amountMinor: number | null = null;
  if (typeof raw.amount !== 'string') bad('amount', 'must be a decimal string such as "125.00"');
  else if (digits !== null) {
    amountMinor = toMinor(raw.amount.trim(), digits);
    if (amountMinor === null)
      bad('amount', `must be a decimal string with at most ${digits} decimals for ${currency} (e.g. "125.00")`);
    else if (amountMinor <= 0) bad('amount', 'must be greater than zero');
  }
  const payerName = text(raw.payer_name, 200);
  if (payerName === null) bad('payer_name', 'must be a non-empty string of at most 200 characters');
  let reference: string | null = null;
  if (raw.reference !== undefined && raw.reference !== null) {
    reference = text(raw.reference, 140);
    if (reference === null) bad('reference', 'must be a non-empty string of at most 140 characters, or null');
  }
  let expectedDate: string | null = null;
  if (raw.expected_date !== undefined && raw.expected_date !== null) {
    if (typeof raw.expected_date !== 'string' || !validDate(raw.expected_date))
      bad('expected_date', 'must be a date (YYYY-MM-DD)');
    else expectedDate = raw.expected_date;
  }
  let expiresAt: number | null = null;
  if (raw.expires_at !== undefined && raw.expires_at !== null) {
    const ms = typeof raw.expires_at === 'string' ? Date.parse(raw.expires_at) : Number.NaN;
    if (!Number.isFinite(ms) || !/^\d{4}-\d{2}-\d{2}T/.test(String(raw.expires_at)))
      bad('expires_at', 'must be an ISO 8601 date-time');
    else if (ms <= now) bad('expires_at', 'must be in the future');
    else expiresAt = ms;
  }
  let metadata = '{}';
  if (raw.metadata !== undefined && raw.metadata !== null) {
    if (!isObject(raw.metadata)) bad('metadata', 'must be an object');
    else {
      metadata = JSON.stringify(raw.metadata);
      if (metadata.length > MAX_METADATA) bad('metadata', `must be at most ${MAX_METADATA} bytes of JSON`);
    }
  }
  if (details.length > 0 || externalId === null || payerName === null || amountMinor === null || digits === null)
    return { ok: false, details };
  return {
    ok: true,
    value: {
      external_id: externalId,
      account_id: accountId,
      amount: fromMinor(amountMinor, digits),
      amount_minor: amountMinor,
      currency,
      payer_name: payerName,
      reference,
      expected_date: expectedDate,
      expires_at: expiresAt,
      metadata,
    },
  };
}

function validDate(value: string): boolean {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(value)) return false;
  const ms = Date.parse(`${value}T00:00:00Z`);
  return Number.isFinite(ms) && new Date(ms).toISOString().slice(0, 10) === value;
}

/** The expiry of a payment registered at `now`: its own, or DEFAULT_EXPIRY_DAYS after the later of registration and expected date. */
export function expiryOf(payment: Pick<NewPayment, 'expires_at' | 'expected_date'>, now: number): number {
  if (payment.expires_at !== null) return payment.expires_at;
  const expected = payment.expected_date ? Date.parse(`${payment.expected_date}T23:59:59.999Z`) : now;
  return Math.max(now, expected) + DEFAULT_EXPIRY_DAYS * 86_400_000;
}

/**
 * Every position of an external id that appears more than once in one batch, as error details
 * (a batch with duplicates is refused whole: which one the caller meant is not ours to guess).
 */
export function duplicateIds(payments: readonly { external_id: string }[], path: string): ErrorDetail[] {
  const seen = new Map<string, number>();
  const details: ErrorDetail[] = [];
  payments.forEach((payment, index) => {
    const first = seen.get(payment.external_id);
    if (first === undefined) seen.set(payment.external_id, index);
    else
      details.push({
        path: `${path}/${index}/external_id`,
        message: `duplicates the external_id of ${path}/${first} (${payment.external_id})`,
      });
  });
  return details;
}
