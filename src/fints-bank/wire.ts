/**
 * The FinTS 3.0 wire syntax, written from the specification ("Formals", chapter B) for the local
 * FinTS bank: segments end with `'`, data elements are separated by `+`, the parts of a data element
 * group by `:`, `?` escapes the next character, and `@n@` introduces n bytes of binary data. Text is
 * ISO-8859-1, so one character is one byte. Deliberately independent of any client library.
 */

/** A binary value (`@n@…`): written with its length prefix, never escaped. */
export interface Bin {
  bin: string;
}

/** One component of a data element: text (escaped when written) or binary. */
export type Part = string | Bin;

/** A data element: a single value or a group of components (`a:b:c`). */
export type Element = Part | Part[];

/** One segment: its header (id, number, version, optional reference) and data elements. */
export interface Segment {
  id: string;
  nr: number;
  version: number;
  ref?: number;
  elements: Element[];
}

/** A decoded segment: every element as its list of components, binary values as plain strings. */
export interface Parsed {
  id: string;
  nr: number;
  version: number;
  ref: number | null;
  /** Data elements after the header; each is the list of its components. */
  elements: string[][];
}

export class FintsSyntaxError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FintsSyntaxError';
  }
}

const SPECIAL = /[?@:+']/g;

function part(value: Part): string {
  if (typeof value === 'string') return value.replace(SPECIAL, (c) => `?${c}`);
  return `@${value.bin.length}@${value.bin}`;
}

/** Writes one segment, trailing empty elements dropped as the syntax allows. */
export function encodeSegment(segment: Segment): string {
  const header = [segment.id, String(segment.nr), String(segment.version)];
  if (segment.ref !== undefined) header.push(String(segment.ref));
  const elements = segment.elements.map((e) => (Array.isArray(e) ? trimEnd(e.map(part), '').join(':') : part(e)));
  return `${[header.join(':'), ...trimEnd(elements, '')].join('+')}'`;
}

function trimEnd(values: string[], empty: string): string[] {
  let end = values.length;
  while (end > 0 && values[end - 1] === empty) end--;
  return values.slice(0, end);
}

/** Splits a message (or the content of HNVSD) into segments. */
export function decodeSegments(text: string): Parsed[] {
  const segments: Parsed[] = [];
  let elements: string[][] = [];
  let parts: string[] = [];
  let current = '';
  let i = 0;
  while (i < text.length) {
    const c = text[i] as string;
    if (c === '?') {
      if (i + 1 >= text.length) throw new FintsSyntaxError('escape character at the end of the message');
      current += text[i + 1];
      i += 2;
    } else if (c === '@' && current === '') {
      const close = text.indexOf('@', i + 1);
      const length = Number(text.slice(i + 1, close));
      if (close < 0 || !Number.isInteger(length) || length < 0 || close + 1 + length > text.length)
        throw new FintsSyntaxError('malformed binary length');
      current = text.slice(close + 1, close + 1 + length);
      i = close + 1 + length;
    } else if (c === ':') {
      parts.push(current);
      current = '';
      i++;
    } else if (c === '+') {
      parts.push(current);
      elements.push(parts);
      parts = [];
      current = '';
      i++;
    } else if (c === "'") {
      parts.push(current);
      elements.push(parts);
      segments.push(toParsed(elements));
      elements = [];
      parts = [];
      current = '';
      i++;
    } else {
      current += c;
      i++;
    }
  }
  if (current !== '' || parts.length > 0 || elements.length > 0)
    throw new FintsSyntaxError('the message does not end with a segment terminator');
  return segments;
}

function toParsed(elements: string[][]): Parsed {
  const [header, ...rest] = elements;
  const [id, nr, version, ref] = header ?? [];
  if (!id || !/^[A-Z]{4,6}$/.test(id) || !nr || !version) throw new FintsSyntaxError('malformed segment header');
  return {
    id,
    nr: Number(nr),
    version: Number(version),
    ref: ref ? Number(ref) : null,
    elements: rest,
  };
}

/** The component at `[element][component]`, or '' when absent. */
export function field(segment: Parsed, element: number, component = 0): string {
  return segment.elements[element]?.[component] ?? '';
}

/** FinTS dates are YYYYMMDD. */
export function fintsDate(date: Date): string {
  return date.toISOString().slice(0, 10).replaceAll('-', '');
}

/** FinTS times are HHMMSS. */
export function fintsTime(date: Date): string {
  return date.toISOString().slice(11, 19).replaceAll(':', '');
}

/** FinTS amounts use a decimal comma and no thousands separator: "1234,5". */
export function fintsAmount(cents: number): string {
  const abs = Math.abs(cents);
  return `${Math.floor(abs / 100)},${String(abs % 100).padStart(2, '0')}`;
}
