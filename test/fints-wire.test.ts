import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { decodeSegments, encodeSegment, field } from '../src/fints-bank/wire.js';

describe("the local FinTS bank's own wire codec", () => {
  it('escapes the syntax characters in text and carries binary data unescaped', () => {
    const text = "a+b:c'd?e@f";
    const binary = "raw 'binary' + : ? @ data\r\n";
    const wire = encodeSegment({
      id: 'HIKAZ',
      nr: 4,
      version: 7,
      ref: 3,
      elements: [[text, 'x'], { bin: binary }, ''],
    });
    expect(wire).toBe(`HIKAZ:4:7:3+a?+b?:c?'d??e?@f:x+@${binary.length}@${binary}'`);
    const [segment] = decodeSegments(wire);
    expect(segment).toMatchObject({ id: 'HIKAZ', nr: 4, version: 7, ref: 3 });
    expect(segment?.elements).toEqual([[text, 'x'], [binary]]);
  });

  it('refuses malformed messages', () => {
    expect(() => decodeSegments("HNHBK:1:3+@99@short'")).toThrow(/binary length/);
    expect(() => decodeSegments('HNHBK:1:3+no terminator')).toThrow(/terminator/);
    expect(() => decodeSegments("lower:1:3+x'")).toThrow(/header/);
  });

  // Recorded segments from lib-fints' own test suite (real banks' answers among them), read from the
  // installed package at test time (nothing copied): the bank's decoder was written apart from the
  // client's, so it is checked against the client project's fixtures.
  it("decodes the recorded FinTS segments of lib-fints' test suite", () => {
    const dir = join(dirname(fileURLToPath(import.meta.resolve('lib-fints'))), 'tests');
    const fixtures: Array<{ file: string; text: string }> = [];
    for (const file of readdirSync(dir).filter((f) => f.endsWith('.test.js'))) {
      const source = readFileSync(join(dir, file), 'utf8');
      for (const m of source.matchAll(
        /(?:const|let) (?:text|message|response)\w* = (["'])((?:\\.|(?!\1)[^\\])*)\1;/g,
      )) {
        const literal = (m[2] ?? '').replace(/\\'/g, "'").replace(/(?<!\\)"/g, '\\"');
        fixtures.push({ file, text: JSON.parse(`"${literal}"`) as string });
      }
    }
    expect(fixtures.length).toBeGreaterThanOrEqual(20);
    for (const { file, text } of fixtures) {
      const segments = decodeSegments(text.endsWith("'") ? text : `${text}'`);
      expect(segments.length, file).toBeGreaterThan(0);
      for (const s of segments) {
        expect(s.id, file).toMatch(/^[A-Z]{4,6}$/);
        expect(s.version, file).toBeGreaterThan(0);
      }
    }
    // A savings bank's HITANS 6: the first TAN method is chipTAN manuell (security function 910).
    const hitans = fixtures.find((f) => f.text.startsWith('HITANS:163:6:'));
    const [segment] = decodeSegments(hitans?.text ?? '');
    expect(segment && [field(segment, 3, 3), field(segment, 3, 8)]).toEqual(['910', 'chipTAN manuell']);
  });
});
