import type { Mt940Entry } from './mt940.js';

/** The camt format the test bank offers (HICAZS) and answers in (HICAZ). */
export const CAMT_052 = 'urn:iso:std:iso:20022:tech:xsd:camt.052.001.08';

function xml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function isoDate(date: Date): string {
  return date.toISOString().slice(0, 10);
}

function amount(cents: number): string {
  return (Math.abs(cents) / 100).toFixed(2);
}

function balance(code: 'PRCD' | 'CLBD', cents: number, date: Date): string {
  return (
    `<Bal><Tp><CdOrPrtry><Cd>${code}</Cd></CdOrPrtry></Tp><Amt Ccy="EUR">${amount(cents)}</Amt>` +
    `<CdtDbtInd>${cents < 0 ? 'DBIT' : 'CRDT'}</CdtDbtInd><Dt><Dt>${isoDate(date)}</Dt></Dt></Bal>`
  );
}

/**
 * One camt.052.001.08 account report (ISO 20022 "BankToCustomerAccountReport", as the German banks'
 * DFÜ-Abkommen annex uses it over FinTS): the opening (PRCD) and closing (CLBD) balances and one booked
 * entry per movement, its `AcctSvcrRef` the bank's reference.
 */
export function camtReport(options: {
  iban: string;
  number: number;
  openingCents: number;
  openingDate: Date;
  now: Date;
  entries: Mt940Entry[];
}): string {
  let closing = options.openingCents;
  const entries = options.entries.map((e) => {
    closing += e.cents;
    const party = e.cents < 0 ? 'Cdtr' : 'Dbtr';
    return (
      `<Ntry><Amt Ccy="EUR">${amount(e.cents)}</Amt><CdtDbtInd>${e.cents < 0 ? 'DBIT' : 'CRDT'}</CdtDbtInd>` +
      `<Sts><Cd>BOOK</Cd></Sts><BookgDt><Dt>${isoDate(e.booked)}</Dt></BookgDt><ValDt><Dt>${isoDate(e.booked)}</Dt></ValDt>` +
      `<AcctSvcrRef>${xml(e.ref)}</AcctSvcrRef><NtryDtls><TxDtls><Refs><EndToEndId>NOTPROVIDED</EndToEndId></Refs>` +
      `<RltdPties><${party}><Nm>${xml(e.name)}</Nm></${party}></RltdPties>` +
      `<RmtInf><Ustrd>${xml(e.purpose)}</Ustrd></RmtInf></TxDtls></NtryDtls>` +
      `<AddtlNtryInf>${e.cents < 0 ? 'LASTSCHRIFT' : 'GUTSCHRIFT'}</AddtlNtryInf></Ntry>`
    );
  });
  const last = options.entries.at(-1)?.booked ?? options.openingDate;
  return (
    `<?xml version="1.0" encoding="UTF-8"?><Document xmlns="${CAMT_052}"><BkToCstmrAcctRpt>` +
    `<GrpHdr><MsgId>R${options.number}</MsgId><CreDtTm>${options.now.toISOString()}</CreDtTm></GrpHdr>` +
    `<Rpt><Id>R${options.number}</Id><ElctrncSeqNb>${options.number}</ElctrncSeqNb>` +
    `<Acct><Id><IBAN>${options.iban}</IBAN></Id><Ccy>EUR</Ccy></Acct>` +
    balance('PRCD', options.openingCents, options.openingDate) +
    balance('CLBD', closing, last) +
    entries.join('') +
    '</Rpt></BkToCstmrAcctRpt></Document>'
  );
}
