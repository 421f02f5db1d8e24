import { full_process, token_set_ratio, token_sort_ratio } from 'fuzzball';

/** Accents off (é → e), lower case, punctuation to spaces: "DUPONT, Jérôme" → "dupont jerome". */
export function foldName(name: string): string {
  return full_process(
    name
      .normalize('NFKD')
      .replace(/\p{M}+/gu, '')
      .toLowerCase(),
    { force_ascii: true },
  );
}

// Names repeat (the same payers, the same payments scored against many movements): fold each once.
const folded = new Map<string, string>();
const FOLDED_MAX = 50_000;

function folding(name: string): string {
  let value = folded.get(name);
  if (value === undefined) {
    if (folded.size >= FOLDED_MAX) folded.clear();
    value = foldName(name);
    folded.set(name, value);
  }
  return value;
}

const RAW = { full_process: false } as const;

/**
 * How alike two payer names are, 0..1, ignoring accents, case, punctuation and word order
 * ("DUPONT, Jérôme" = "Jerome Dupont"). The mean of fuzzball's token-sort ratio (whole names) and
 * token-set ratio (one name contained in the other, "ACME" in "ACME BV Amsterdam"), so a contained
 * name scores high but below an identical one.
 */
export function nameSimilarity(a: string, b: string): number {
  const x = folding(a);
  const y = folding(b);
  if (x === '' || y === '') return 0;
  if (x === y) return 1;
  return (token_sort_ratio(x, y, RAW) + token_set_ratio(x, y, RAW)) / 200;
}

/** A reference reduced to its letters and digits, upper case: "INV-2024/001" → "INV2024001". */
export function foldReference(reference: string | null): string {
  return reference
    ? foldName(reference)
        .replace(/[^a-z0-9]/g, '')
        .toUpperCase()
    : '';
}
