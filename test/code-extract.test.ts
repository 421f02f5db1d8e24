import { describe, expect, it } from 'vitest';
import { extractCode } from '../src/core/code-extract.js';

const six = { length: 6, type: 'numeric' } as const;
const anyNumeric = { length: null, type: 'numeric' } as const;
const eightAlnum = { length: 8, type: 'alphanumeric' } as const;
const anyAlnum = { length: null, type: 'alphanumeric' } as const;

describe('extractCode', () => {
  it('finds the one code that fits the descriptor in a whole SMS', () => {
    const sms = 'SandboxBank: your login code is 564329. It is valid for 2 minutes. Never share this code.';
    expect(extractCode(sms, six)).toEqual({ ok: true, code: '564329' });
    expect(extractCode('Ihr Code lautet 123456', six)).toEqual({ ok: true, code: '123456' });
    expect(extractCode('G-123456 is your verification code', six)).toEqual({ ok: true, code: '123456' });
    expect(extractCode('123456', six)).toEqual({ ok: true, code: '123456' });
  });

  it('ignores numbers that are not codes: amounts, times, other lengths', () => {
    expect(extractCode('You paid €12.50 at 10:30; code 4821', anyNumeric)).toEqual({ ok: true, code: '4821' });
    expect(extractCode('Amount 1,234.56 EUR. Code 987654', six)).toEqual({ ok: true, code: '987654' });
    expect(extractCode('Use 123456 to log in. Call 0800 1234 for help', six)).toEqual({ ok: true, code: '123456' });
    expect(extractCode('Code 1234567', six)).toEqual({ ok: false, reason: 'no_code', candidates: [] });
  });

  it('reads codes written in groups', () => {
    expect(extractCode('Your code is 482 913. Valid 10 minutes', six)).toEqual({ ok: true, code: '482913' });
    expect(extractCode('Your code is 482-913.', anyNumeric)).toEqual({ ok: true, code: '482913' });
    expect(extractCode('code 12 34 56', six)).toEqual({ ok: true, code: '123456' });
  });

  it('never glues a code to the number next to it', () => {
    expect(extractCode('Code: 4821 15 min', anyNumeric)).toEqual({ ok: true, code: '4821' });
  });

  it('refuses two different candidates instead of picking one', () => {
    expect(extractCode('Code 123456 or 654321', six)).toEqual({
      ok: false,
      reason: 'ambiguous',
      candidates: ['123456', '654321'],
    });
    // A grouped code beside a plain number of the same length is two candidates, not the plain one.
    expect(extractCode('Your code is 482 913. Reference 771234', six)).toEqual({
      ok: false,
      reason: 'ambiguous',
      candidates: ['771234', '482913'],
    });
    // The same code twice is one candidate.
    expect(extractCode('Code 123456. Again: 123456', six)).toEqual({ ok: true, code: '123456' });
  });

  it('says when there is no code', () => {
    expect(extractCode('Your statement is ready', six)).toEqual({ ok: false, reason: 'no_code', candidates: [] });
  });

  it('reads alphanumeric codes: a token with a digit, or failing that one in capitals', () => {
    const sms = 'SandboxBank: your login code is AB12CD34. It is valid for 2 minutes.';
    expect(extractCode(sms, eightAlnum)).toEqual({ ok: true, code: 'AB12CD34' });
    expect(extractCode('Your code: ABCDEFGH. Please do not share', eightAlnum)).toEqual({
      ok: true,
      code: 'ABCDEFGH',
    });
    expect(extractCode('Your code: ABCDEFGH. DO NOT SHARE', anyAlnum)).toMatchObject({
      ok: false,
      reason: 'ambiguous',
    });
  });

  it('follows a per-bank pattern: its first group, or the whole match', () => {
    const sms = 'Code 123456 for login; ref 654321';
    expect(extractCode(sms, six, { pattern: 'Code (\\d+)' })).toEqual({ ok: true, code: '123456' });
    expect(extractCode(sms, six, { pattern: 'ref \\d+' })).toEqual({ ok: false, reason: 'no_code', candidates: [] });
    expect(extractCode('PIN: 12-34-56', six, { pattern: 'PIN: ([\\d-]+)' })).toEqual({ ok: true, code: '123456' });
    expect(extractCode(sms, six, { pattern: '(\\d{6})' })).toMatchObject({ ok: false, reason: 'ambiguous' });
    expect(extractCode(sms, six, { pattern: '(' })).toEqual({ ok: false, reason: 'bad_pattern', candidates: [] });
    // A match the request could not take (length, characters) is no candidate.
    expect(extractCode('Code 12345', six, { pattern: 'Code (\\d+)' })).toEqual({
      ok: false,
      reason: 'no_code',
      candidates: [],
    });
  });
});
