import { CAMT_052 } from './camt.js';
import { type Bin, type Element, encodeSegment, fintsDate, fintsTime, type Part, type Segment } from './wire.js';

/** A return code with its text and parameters (HIRMG/HIRMS). */
export type Answer = readonly [code: string, text: string, ...params: string[]];

/** A response segment before the envelope numbers it. */
export type Draft = Omit<Segment, 'nr'>;

export const SMS_TAN = 942;
export const DECOUPLED_TAN = 946;
/** How often (seconds) a client should ask whether a decoupled approval was given. */
export const DECOUPLED_POLL_SECONDS = 1;

export const BPD_VERSION = 7;
export const UPD_VERSION = 3;
export const BANK_NAME = 'otpilot FinTS test bank';

function answers(list: readonly Answer[]): Element[] {
  return list.map(([code, text, ...params]) => [code, '', text, ...params]);
}

export function hirmg(list: readonly Answer[]): Draft {
  return { id: 'HIRMG', version: 2, elements: answers(list) };
}

export function hirms(ref: number, list: readonly Answer[]): Draft {
  return { id: 'HIRMS', version: 2, ref, elements: answers(list) };
}

/** The tuple of one TAN method in HITANS version 6 (21 fields) or 7 (26: with the decoupled parameters). */
function tanMethod(version: 6 | 7, m: { func: number; zka: string; name: string; decoupled: boolean }): Part[] {
  const base: Part[] = [
    String(m.func),
    '2',
    m.zka,
    m.zka,
    '',
    m.name,
    m.decoupled ? '' : '6',
    m.decoupled ? '' : '1',
    m.decoupled ? 'Freigabe' : 'TAN',
    '2048',
    'N',
    '1',
    'N',
    '0',
    '0',
    'N',
    'N',
    '00',
    '0',
    'N',
    '0',
  ];
  if (version === 6) return base;
  return [
    ...base,
    ...(m.decoupled
      ? ['60', String(DECOUPLED_POLL_SECONDS), String(DECOUPLED_POLL_SECONDS), 'J', 'J']
      : ['', '', '', '', '']),
  ];
}

/** The bank parameter data: HIBPA, HIPINS, HITANS (6 and 7), HISALS, HIKAZS. */
export function bpd(ref: number, blz: string): Draft[] {
  const sms = { func: SMS_TAN, zka: 'mobileTAN', name: 'smsTAN', decoupled: false };
  const push = { func: DECOUPLED_TAN, zka: 'Decoupled', name: 'pushTAN 2.0', decoupled: true };
  return [
    {
      id: 'HIBPA',
      version: 3,
      ref,
      elements: [String(BPD_VERSION), ['280', blz], BANK_NAME, '1', ['1'], ['300'], '0'],
    },
    {
      id: 'HIPINS',
      version: 1,
      ref,
      elements: [
        '1',
        '1',
        '0',
        [
          '5',
          '20',
          '6',
          'Benutzerkennung',
          'Kunden-ID',
          'HKTAN',
          'N',
          'HKIDN',
          'N',
          'HKSYN',
          'N',
          'HKSAL',
          'N',
          'HKKAZ',
          'N',
          'HKCAZ',
          'N',
          'HKEND',
          'N',
        ],
      ],
    },
    { id: 'HITANS', version: 6, ref, elements: ['1', '1', '0', ['N', 'N', '0', ...tanMethod(6, sms)]] },
    {
      id: 'HITANS',
      version: 7,
      ref,
      elements: ['1', '1', '0', ['N', 'N', '0', ...tanMethod(7, sms), ...tanMethod(7, push)]],
    },
    { id: 'HISALS', version: 7, ref, elements: ['1', '1', '0'] },
    { id: 'HIKAZS', version: 7, ref, elements: ['1', '1', '0', ['90', 'J', 'N']] },
    { id: 'HICAZS', version: 1, ref, elements: ['1', '1', '0', ['90', 'J', 'N', CAMT_052]] },
  ];
}

export interface UpdAccount {
  number: string;
  iban: string;
  product: string;
  type: number;
}

/** The user parameter data: HIUPA and one HIUPD per account. */
export function upd(
  ref: number,
  blz: string,
  userId: string,
  holder: string,
  accounts: UpdAccount[],
  statements: 'HKKAZ' | 'HKCAZ',
): Draft[] {
  return [
    { id: 'HIUPA', version: 4, ref, elements: [userId, String(UPD_VERSION), '0', holder] },
    ...accounts.map(
      (a): Draft => ({
        id: 'HIUPD',
        version: 6,
        ref,
        elements: [
          [a.number, '', '280', blz],
          a.iban,
          userId,
          String(a.type),
          'EUR',
          holder,
          '',
          a.product,
          '',
          ['HKSAL', '1'],
          [statements, '1'],
        ],
      }),
    ),
  ];
}

export function hisyn(ref: number, systemId: string): Draft {
  return { id: 'HISYN', version: 4, ref, elements: [systemId] };
}

/** HITAN version 7: process, (no hash), order reference, challenge, (no HHD_UC), valid until, medium. */
export function hitan(ref: number, process: string, orderRef: string, challenge?: string, validUntil?: Date): Draft {
  return {
    id: 'HITAN',
    version: 7,
    ref,
    elements: [
      process,
      '',
      orderRef,
      challenge ?? '',
      '',
      validUntil ? [fintsDate(validUntil), fintsTime(validUntil)] : '',
    ],
  };
}

/** The envelope around a response: HNHBK, HNVSK, HNVSD (the segments), HNHBS, numbered and measured. */
export function envelope(options: {
  dialogId: string;
  msgNr: number;
  blz: string;
  userId: string;
  systemId: string;
  now: Date;
  inner: Draft[];
}): string {
  let nr = 2;
  const inner = options.inner.map((d) => encodeSegment({ ...d, nr: nr++ })).join('');
  const payload: Bin = { bin: inner };
  const rest = [
    encodeSegment({
      id: 'HNVSK',
      nr: 998,
      version: 3,
      elements: [
        ['PIN', '1'],
        '998',
        '1',
        ['1', '', options.systemId],
        ['1', fintsDate(options.now), fintsTime(options.now)],
        ['2', '2', '13', { bin: '00000000' }, '5', '1'],
        ['280', options.blz, options.userId, 'V', '0', '0'],
        '0',
      ],
    }),
    encodeSegment({ id: 'HNVSD', nr: 999, version: 1, elements: [payload] }),
    encodeSegment({ id: 'HNHBS', nr, version: 1, elements: [String(options.msgNr)] }),
  ].join('');
  const head = (length: number) =>
    encodeSegment({
      id: 'HNHBK',
      nr: 1,
      version: 3,
      elements: [
        String(length).padStart(12, '0'),
        '300',
        options.dialogId,
        String(options.msgNr),
        [options.dialogId, String(options.msgNr)],
      ],
    });
  const length = head(0).length + rest.length;
  return head(length) + rest;
}
