import { fintsAmount } from './wire.js';

/** One statement line as MT940 carries it. */
export interface Mt940Entry {
  ref: string;
  booked: Date;
  cents: number;
  name: string;
  purpose: string;
}

function yymmdd(date: Date): string {
  return date.toISOString().slice(2, 10).replaceAll('-', '');
}

function balance(tag: string, date: Date, cents: number): string {
  return `:${tag}:${cents < 0 ? 'D' : 'C'}${yymmdd(date)}EUR${fintsAmount(cents)}`;
}

/** MT940 keeps to a small character set; the test bank's texts are plain already, this guards the rest. */
function swift(text: string): string {
  return text.replace(/[^A-Za-z0-9 /\-?:().,'+]/g, ' ').replace(/\?/g, ' ');
}

/**
 * One complete MT940 statement (SWIFT MT940 as the German banks' "DFÜ-Abkommen" profile uses it):
 * `:61:` turnover lines with the bank reference after `//`, `:86:` with structured sub-fields
 * (?00 booking text, ?20 purpose, ?32 counterparty).
 */
export function mt940Statement(options: {
  blz: string;
  account: string;
  number: number;
  openingCents: number;
  openingDate: Date;
  entries: Mt940Entry[];
}): string {
  const lines = [':20:STARTUMS', `:25:${options.blz}/${options.account}`, `:28C:${options.number}`];
  lines.push(balance('60F', options.openingDate, options.openingCents));
  let closing = options.openingCents;
  let closingDate = options.openingDate;
  for (const e of options.entries) {
    const date = yymmdd(e.booked);
    lines.push(`:61:${date}${date.slice(2)}${e.cents < 0 ? 'D' : 'C'}${fintsAmount(e.cents)}NMSCNONREF//${e.ref}`);
    lines.push(
      `:86:${e.cents < 0 ? '106' : '166'}?00${swift(e.cents < 0 ? 'LASTSCHRIFT' : 'GUTSCHRIFT')}?20${swift(e.purpose)}?32${swift(e.name)}`,
    );
    closing += e.cents;
    closingDate = e.booked;
  }
  lines.push(balance('62F', closingDate, closing));
  return `${lines.join('\r\n')}\r\n-\r\n`;
}
