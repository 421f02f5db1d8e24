import { hash32, hex8, rehash } from './hash.js';

/** Movements start at this instant: slot 0 is 2024-01-01T00:00:00Z. */
export const MOVEMENT_EPOCH_MS = Date.UTC(2024, 0, 1);
/** One movement per account per slot. */
export const SLOT_MS = 8 * 60 * 60 * 1000;
/** One UTC day. */
export const DAY_MS = 24 * 60 * 60 * 1000;
/** The balance sums the movements of the last 90 days (270 slots): cheap and still moving. */
const BALANCE_SLOTS = 90 * 3;
/** Guards against ranges that would generate millions of rows when a test clock runs far ahead. */
export const MAX_RANGE_SLOTS = 20_000;

/** One ledger of a sandbox user. */
export interface SandboxAccount {
  id: string;
  name: string;
  iban: string;
  number: string;
  currency: 'EUR';
  type: 'current' | 'savings';
  /** Opening balance in cents, before the last 90 days of movements. */
  baseCents: number;
}

/** A transaction as the bank's JSON API returns it. */
export interface SandboxMovement {
  id: string;
  booked_at: string;
  amount: string;
  currency: string;
  name: string;
  reference: string;
}

/** The two accounts of a user (a EUR current account and a EUR savings account), stable for the username. */
export function accountsOf(username: string): SandboxAccount[] {
  return (['current', 'savings'] as const).map((type) => {
    const h = hash32(`account|${type}|${username}`);
    const number = String(rehash(h, 1) % 100_000).padStart(5, '0') + String(rehash(h, 2) % 100_000).padStart(5, '0');
    const bban = `SBNK${number}`;
    return {
      id: `${type === 'current' ? 'ca' : 'sa'}_${hex8(h)}`,
      name: type === 'current' ? 'Current account' : 'Savings account',
      iban: `NL${ibanCheckDigits('NL', bban)}${bban}`,
      number,
      currency: 'EUR',
      type,
      baseCents: type === 'current' ? 150_000 + (rehash(h, 3) % 300_000) : 500_000 + (rehash(h, 4) % 1_500_000),
    };
  });
}

/** ISO 13616 check digits, so the IBAN-like strings also pass a mod-97 check. */
function ibanCheckDigits(country: string, bban: string): string {
  let remainder = 0;
  for (const ch of `${bban}${country}00`) {
    const code = ch.charCodeAt(0);
    const digits = code >= 65 && code <= 90 ? String(code - 55) : ch;
    for (const d of digits) remainder = (remainder * 10 + (d.charCodeAt(0) - 48)) % 97;
  }
  return String(98 - remainder).padStart(2, '0');
}

const MERCHANTS = [
  'Albert Heijn',
  'Jumbo',
  'NS Reizen',
  'Bol.com',
  'Shell',
  'Spotify',
  'Eneco',
  'Ziggo',
  'HEMA',
  'Kruidvat',
  'Gemeente Amsterdam',
  'Coffee Company',
];
const FRIENDS = ['J. de Wit', 'M. Peters', 'S. Hendriks', 'L. Dekker'];

function pick(list: readonly string[], h: number): string {
  return list[h % list.length] ?? '';
}

interface Draw {
  cents: number;
  name: string;
  reference: string;
}

/** Amount, counterparty and reference of one slot: a pure function of username, account id and slot index. */
function draw(username: string, account: SandboxAccount, slot: number): Draw {
  const h = hash32(`${username}|${account.id}|${slot}`);
  const r = h % 100;
  const h2 = rehash(h, 1);
  const h3 = rehash(h, 2);
  if (account.type === 'current') {
    if (r < 2) {
      const month = new Date(MOVEMENT_EPOCH_MS + slot * SLOT_MS).toISOString().slice(0, 7);
      return { cents: 250_000 + (h2 % 100_000), name: 'Sandbox Employer BV', reference: `Salary ${month}` };
    }
    if (r < 8) return { cents: 2_000 + (h2 % 6_000), name: pick(FRIENDS, h3), reference: 'Thanks!' };
    return {
      cents: -(100 + (h2 % 12_000)),
      name: pick(MERCHANTS, h3),
      reference: `Payment ${String(h3 % 1_000_000).padStart(6, '0')}`,
    };
  }
  if (r < 60) return { cents: 1_000 + (h2 % 10_000), name: 'Transfer from current account', reference: 'Savings' };
  return { cents: -(500 + (h2 % 5_000)), name: 'Transfer to current account', reference: 'Withdrawal' };
}

/** The movement of `account` in slot `slot`; its id is stable (`tx_<account>_<slot>`). */
export function movementAt(username: string, account: SandboxAccount, slot: number): SandboxMovement {
  const d = draw(username, account, slot);
  return {
    id: `tx_${account.id}_${slot}`,
    booked_at: new Date(MOVEMENT_EPOCH_MS + slot * SLOT_MS).toISOString(),
    amount: formatCents(d.cents),
    currency: account.currency,
    name: d.name,
    reference: d.reference,
  };
}

/** Index of the last slot visible at `nowMs`, or -1 before the epoch. */
export function lastVisibleSlot(nowMs: number): number {
  return nowMs < MOVEMENT_EPOCH_MS ? -1 : Math.floor((nowMs - MOVEMENT_EPOCH_MS) / SLOT_MS);
}

/** Current balance in cents: the base amount plus the visible movements of the last 90 days. */
export function balanceCents(username: string, account: SandboxAccount, nowMs: number): number {
  const last = lastVisibleSlot(nowMs);
  let total = account.baseCents;
  for (let slot = Math.max(0, last - BALANCE_SLOTS + 1); slot <= last; slot++) {
    total += draw(username, account, slot).cents;
  }
  return total;
}

/** Slot range for booking times in [fromMs, toMs] that are visible at `nowMs`; empty when first > last. */
export function slotRange(fromMs: number, toMs: number, nowMs: number): { first: number; last: number } {
  const first = Math.max(0, Math.ceil((fromMs - MOVEMENT_EPOCH_MS) / SLOT_MS));
  const last = Math.min(lastVisibleSlot(nowMs), Math.floor((toMs - MOVEMENT_EPOCH_MS) / SLOT_MS));
  return { first, last };
}

/** Visible movements booked between the two instants (inclusive), newest first. */
export function movementsBetween(
  username: string,
  account: SandboxAccount,
  range: { first: number; last: number },
): SandboxMovement[] {
  const out: SandboxMovement[] = [];
  for (let slot = range.last; slot >= range.first; slot--) out.push(movementAt(username, account, slot));
  return out;
}

/** Parses `YYYY-MM-DD` to the UTC midnight it names, or null when it is not a real date. */
export function parseIsoDate(value: string): number | null {
  const match = /^(\d{4})-(\d{2})-(\d{2})$/.exec(value);
  if (!match) return null;
  const [year, month, day] = [Number(match[1]), Number(match[2]), Number(match[3])];
  const ms = Date.UTC(year, month - 1, day);
  const back = new Date(ms);
  if (back.getUTCFullYear() !== year || back.getUTCMonth() !== month - 1 || back.getUTCDate() !== day) return null;
  return ms;
}

/** End of the UTC day that starts at `dayMs`, inclusive. */
export function endOfDay(dayMs: number): number {
  return dayMs + DAY_MS - 1;
}

/** `YYYY-MM-DD` of an instant, UTC. */
export function isoDate(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

/** Cents to a decimal string in the major unit ("-12.34"). */
export function formatCents(cents: number): string {
  const abs = Math.abs(cents);
  return `${cents < 0 ? '-' : ''}${Math.floor(abs / 100)}.${String(abs % 100).padStart(2, '0')}`;
}
