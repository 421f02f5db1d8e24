import { type CodeDescriptor, checkCode } from './descriptor.js';

/**
 * Finding the code inside a whole SMS ("Your code is 482 913. Never share it."). Used by the SMS
 * relays and by the dashboard's prompt when a whole message is pasted. It refuses to guess: two
 * different candidates are `ambiguous`, not "the first one".
 */
export type Extraction =
  | { ok: true; code: string }
  | { ok: false; reason: 'no_code' | 'ambiguous' | 'bad_pattern'; candidates: string[] };

/** Per-bank help: a regular expression whose first capture group (or whole match) is the code. */
export interface ExtractionHint {
  pattern?: string | null;
}

/** Lengths considered when the bank does not say how long its codes are. */
const NUMERIC_RANGE = { min: 4, max: 8 };
const ALPHANUMERIC_RANGE = { min: 4, max: 12 };

const unique = (values: string[]) => [...new Set(values)];

function verdict(candidates: string[]): Extraction {
  const distinct = unique(candidates);
  if (distinct.length === 1) return { ok: true, code: distinct[0]! };
  return { ok: false, reason: distinct.length === 0 ? 'no_code' : 'ambiguous', candidates: distinct };
}

function fits(code: string, descriptor: Pick<CodeDescriptor, 'length' | 'type'>): boolean {
  const range = descriptor.type === 'numeric' ? NUMERIC_RANGE : ALPHANUMERIC_RANGE;
  if (descriptor.length !== null) return code.length === descriptor.length;
  return code.length >= range.min && code.length <= range.max;
}

/** Whole tokens only: a code never continues into letters or digits (or a decimal point) on either side. */
function tokens(text: string, body: string): string[] {
  const pattern = new RegExp(`(?<![A-Za-z0-9.,])(?:${body})(?![A-Za-z0-9]|[.,][0-9])`, 'g');
  return [...text.matchAll(pattern)].map((match) => match[0]);
}

function numericCandidates(text: string, descriptor: Pick<CodeDescriptor, 'length' | 'type'>): string[] {
  const plain = tokens(text, '[0-9]+').filter((code) => fits(code, descriptor));
  // Codes written in groups ("482 913", "482-913"). A group with a part that is a code on its own is
  // that code next to another number ("4821 15 minutes"), never glued to it. Any other group counts
  // beside the plain tokens: "482 913 … ref 771234" is two candidates, not the plain one by default.
  const grouped = tokens(text, '[0-9]{2,4}(?:[ -][0-9]{2,4})+')
    .filter((group) => !group.split(/[ -]/).some((part) => plain.includes(part)))
    .map((group) => group.replace(/[ -]/g, ''))
    .filter((code) => fits(code, descriptor));
  return [...plain, ...grouped];
}

function alphanumericCandidates(text: string, descriptor: Pick<CodeDescriptor, 'length' | 'type'>): string[] {
  const all = tokens(text, '[A-Za-z0-9]+').filter((code) => fits(code, descriptor));
  // Words of the right length are everywhere; a code has a digit, or failing that is written in capitals.
  const withDigit = all.filter((code) => /[0-9]/.test(code));
  if (withDigit.length > 0) return withDigit;
  return all.filter((code) => /^[A-Z]+$/.test(code));
}

/** Extracts the one code in `text` that fits the descriptor, or says why there is none. */
export function extractCode(
  text: string,
  descriptor: Pick<CodeDescriptor, 'length' | 'type'>,
  hint: ExtractionHint = {},
): Extraction {
  if (hint.pattern) {
    let pattern: RegExp;
    try {
      pattern = new RegExp(hint.pattern, 'g');
    } catch {
      return { ok: false, reason: 'bad_pattern', candidates: [] };
    }
    // A match that the submission would refuse (wrong characters or length) is no candidate.
    const found = [...text.matchAll(pattern)]
      .map((match) => (match[1] ?? match[0]).replace(/[\s-]/g, ''))
      .filter((code) => checkCode(code, descriptor).ok);
    return verdict(found);
  }
  switch (descriptor.type) {
    case 'numeric':
      return verdict(numericCandidates(text, descriptor));
    case 'alphanumeric':
      return verdict(alphanumericCandidates(text, descriptor));
    default: {
      const never: never = descriptor.type;
      throw new Error(`unknown code type ${String(never)}`);
    }
  }
}
