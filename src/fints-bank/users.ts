import { createHash } from 'node:crypto';

/** How a FinTS test-bank user behaves, fixed by the part of the user id before any `+`. */
export type FintsBehaviour = 'notan' | 'tan' | 'newsys' | 'decoupled' | 'pages' | 'camt' | 'locked' | 'down';

/** The behaviour table, in the order docs/fints.md lists it. */
export const FINTS_BEHAVIOURS: ReadonlyArray<{ readonly user: FintsBehaviour; readonly description: string }> = [
  { user: 'notan', description: 'No TAN ever (the bank exempts every dialog).' },
  { user: 'tan', description: 'smsTAN on every login (dialog init), unless one was given within the last 5 minutes.' },
  { user: 'newsys', description: 'smsTAN only for a system id that has not been strongly authenticated yet.' },
  { user: 'decoupled', description: 'Decoupled TAN: approve or refuse the login on the phone page.' },
  { user: 'pages', description: 'Like newsys, with 23 movements served 5 per message (touchdown 3040).' },
  { user: 'camt', description: 'Like pages, its statements as camt.052 (HKCAZ) instead of MT940 (HKKAZ).' },
  { user: 'locked', description: 'The bank reports the access locked (3938).' },
  { user: 'down', description: 'The bank answers HTTP 503 (temporarily unavailable).' },
];

/** The PIN of every test-bank user. */
export const FINTS_PIN = '12345';

const KNOWN = new Set<string>(FINTS_BEHAVIOURS.map((b) => b.user));

export function behaviourOf(userId: string): FintsBehaviour | null {
  const plus = userId.indexOf('+');
  const base = plus === -1 ? userId : userId.slice(0, plus);
  return KNOWN.has(base) ? (base as FintsBehaviour) : null;
}

function hash(text: string): number {
  return createHash('sha256').update(text).digest().readUInt32BE(0);
}

/** One ledger of a test-bank user. Amounts in cents. */
export interface SeedAccount {
  number: string;
  iban: string;
  product: string;
  /** FinTS account type: 1 giro, 10 savings. */
  type: number;
  openingCents: number;
}

/** One booked movement. */
export interface SeedMovement {
  /** The bank's reference, unique per movement (MT940 bank reference). */
  ref: string;
  accountNumber: string;
  /** Days before the bank's today. */
  daysAgo: number;
  cents: number;
  name: string;
  purpose: string;
}

/** German IBAN from BLZ and account number (ISO 13616 check digits). */
export function germanIban(blz: string, account: string): string {
  const bban = `${blz}${account.padStart(10, '0')}`;
  // "DE" = 13 14, then "00" as placeholder check digits.
  const digits = `${bban}131400`;
  let rest = 0;
  for (const d of digits) rest = (rest * 10 + Number(d)) % 97;
  return `DE${String(98 - rest).padStart(2, '0')}${bban}`;
}

export function accountsOf(userId: string, blz: string): SeedAccount[] {
  const giro = String(1_000_000_000 + (hash(`giro|${userId}`) % 900_000_000));
  const savings = String(2_000_000_000 + (hash(`savings|${userId}`) % 900_000_000));
  return [
    { number: giro, iban: germanIban(blz, giro), product: 'Girokonto', type: 1, openingCents: 150_000 },
    { number: savings, iban: germanIban(blz, savings), product: 'Tagesgeld', type: 10, openingCents: 1_000_000 },
  ];
}

const PAYEES: ReadonlyArray<[string, string, number]> = [
  ['REWE Markt', 'Kartenzahlung', -4_237],
  ['Stadtwerke', 'Abschlag Strom', -8_900],
  ['Arbeitgeber GmbH', 'Gehalt', 310_000],
  ['Vermieter', 'Miete', -95_000],
  ['Buchhandlung', 'Kartenzahlung', -1_999],
  ['Versicherung AG', 'Beitrag', -3_150],
];

/** Deterministic movements: 6 on the giro account (23 for `pages`), one on savings. */
export function movementsOf(userId: string, accounts: SeedAccount[]): SeedMovement[] {
  const [giro, savings] = accounts;
  if (!giro || !savings) return [];
  const behaviour = behaviourOf(userId);
  const count = behaviour === 'pages' || behaviour === 'camt' ? 23 : 6;
  const list: SeedMovement[] = [];
  for (let i = 0; i < count; i++) {
    const [name, purpose, cents] = PAYEES[i % PAYEES.length] ?? ['?', '?', 0];
    list.push({
      ref: `T${giro.number.slice(-4)}${String(i + 1).padStart(4, '0')}`,
      accountNumber: giro.number,
      daysAgo: 2 + i * 2,
      cents: cents + (i >= PAYEES.length ? i : 0),
      name,
      purpose: `${purpose} ${i + 1}`,
    });
  }
  list.push({
    ref: `T${savings.number.slice(-4)}0001`,
    accountNumber: savings.number,
    daysAgo: 10,
    cents: 1_250,
    name: 'Zinsen',
    purpose: 'Zinsgutschrift',
  });
  return list;
}

/** The account holder's name. */
export function holderOf(userId: string): string {
  const names = ['Erika Mustermann', 'Max Mustermann', 'Anna Schmidt', 'Jonas Weber'];
  return names[hash(`name|${userId}`) % names.length] ?? 'Erika Mustermann';
}
