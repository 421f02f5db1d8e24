import { CAMT_052, camtReport } from './camt.js';
import { mt940Statement } from './mt940.js';
import { type Answer, type Draft, hirmg, hirms } from './segments.js';
import type { FintsBankState, UserState } from './state.js';
import { accountsOf, movementsOf } from './users.js';
import { field, fintsAmount, fintsDate, fintsTime, type Parsed } from './wire.js';

/** Business transactions of an authenticated dialog: balances (HKSAL), statements (HKKAZ/MT940, HKCAZ/camt). */

const RECEIVED: Answer = ['0010', 'Nachricht entgegengenommen.'];
const ERRORS: Answer = ['9050', 'Die Nachricht enthält Fehler.'];

/** The account named in HKSAL/HKKAZ version 7 (international account: IBAN, BIC, number, …). */
function accountOf(state: FintsBankState, user: UserState, segment: Parsed) {
  const number = field(segment, 0, 2);
  const iban = field(segment, 0, 0);
  return accountsOf(user.id, state.blz).find((a) => a.number === number || (iban !== '' && a.iban === iban)) ?? null;
}

export function balance(state: FintsBankState, user: UserState, hksal: Parsed): Draft[] {
  const account = accountOf(state, user, hksal);
  if (!account) return [hirmg([ERRORS]), hirms(hksal.nr, [['9010', 'Konto unbekannt.']])];
  const cents = movementsOf(user.id, accountsOf(user.id, state.blz))
    .filter((m) => m.accountNumber === account.number)
    .reduce((sum, m) => sum + m.cents, account.openingCents);
  const now = new Date(state.now());
  return [
    hirmg([RECEIVED]),
    hirms(hksal.nr, [['0020', 'Auftrag ausgeführt.']]),
    {
      id: 'HISAL',
      version: 7,
      ref: hksal.nr,
      elements: [
        [account.iban, '', account.number, '', '280', state.blz],
        account.product,
        'EUR',
        [cents < 0 ? 'D' : 'C', fintsAmount(cents), 'EUR', fintsDate(now), fintsTime(now)],
        '',
        '',
        [fintsAmount(Math.max(cents, 0) + 100_000), 'EUR'],
      ],
    },
  ];
}

function parseDate(value: string): number | null {
  const m = /^(\d{4})(\d{2})(\d{2})$/.exec(value);
  return m ? Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])) : null;
}

/** Where the fields of the two statement requests sit: HKKAZ 7 (MT940) and HKCAZ 1 (camt). */
const LAYOUT = {
  HKKAZ: { from: 2, to: 3, mark: 5 },
  HKCAZ: { from: 3, to: 4, mark: 6 },
} as const;

/** Statements for HKKAZ (MT940 in HIKAZ) or HKCAZ (camt.052 in HICAZ), a page per message (touchdown 3040). */
export function statements(state: FintsBankState, user: UserState, request: Parsed): Draft[] {
  const kind = request.id === 'HKCAZ' ? 'HKCAZ' : 'HKKAZ';
  const layout = LAYOUT[kind];
  const account = accountOf(state, user, request);
  if (!account) return [hirmg([ERRORS]), hirms(request.nr, [['9010', 'Konto unbekannt.']])];
  const now = state.now();
  const today = Date.UTC(new Date(now).getUTCFullYear(), new Date(now).getUTCMonth(), new Date(now).getUTCDate());
  const from = parseDate(field(request, layout.from)) ?? today - 90 * 86_400_000;
  const to = parseDate(field(request, layout.to)) ?? today;
  const all = movementsOf(user.id, accountsOf(user.id, state.blz))
    .filter((m) => m.accountNumber === account.number)
    .map((m) => ({ ...m, booked: new Date(today - m.daysAgo * 86_400_000) }))
    .sort((a, b) => a.booked.getTime() - b.booked.getTime());
  const inRange = all.filter((m) => m.booked.getTime() >= from && m.booked.getTime() <= to);
  // The continuation mark is the index of the next movement: opaque to the client, as the spec wants.
  const mark = field(request, layout.mark);
  const start = /^K\d+$/.test(mark) ? Number(mark.slice(1)) : 0;
  const page = inRange.slice(start, start + state.pageSize);
  const before = all.filter((m) => m.booked.getTime() < (page[0]?.booked.getTime() ?? from));
  const report = {
    number: Math.floor(start / state.pageSize) + 1,
    openingCents: before.reduce((sum, m) => sum + m.cents, account.openingCents),
    openingDate: new Date(from),
    entries: page.map((m) => ({ ref: m.ref, booked: m.booked, cents: m.cents, name: m.name, purpose: m.purpose })),
  };
  const next = start + state.pageSize;
  const answers: Answer[] =
    next < inRange.length
      ? [['3040', 'Es liegen weitere Informationen vor.', `K${next}`]]
      : [['0020', 'Auftrag ausgeführt.']];
  const data: Draft =
    kind === 'HKCAZ'
      ? {
          id: 'HICAZ',
          version: 1,
          ref: request.nr,
          elements: [
            [account.iban, '', account.number, '', '280', state.blz],
            CAMT_052,
            [{ bin: camtReport({ iban: account.iban, now: new Date(now), ...report }) }],
          ],
        }
      : {
          id: 'HIKAZ',
          version: 7,
          ref: request.nr,
          elements: [{ bin: mt940Statement({ blz: state.blz, account: account.number, ...report }) }],
        };
  return [hirmg([RECEIVED]), hirms(request.nr, answers), data];
}
