import { token_set_ratio, token_sort_ratio } from 'fuzzball';

/** Accents off (é → e, ß stays), lower case; fuzzball then drops punctuation and orders the words. */
export function foldName(name: string): string {
  return name
    .normalize('NFKD')
    .replace(/\p{M}+/gu, '')
    .toLowerCase();
}

/**
 * How alike two payer names are, 0..1, ignoring accents, case, punctuation and word order
 * ("DUPONT, Jérôme" = "Jerome Dupont"). The mean of fuzzball's token-sort ratio (whole names) and
 * token-set ratio (one name contained in the other, "ACME" in "ACME BV Amsterdam") so that a
 * contained name scores high but below an identical one.
 */
export function nameSimilarity(a: string, b: string): number {
  const x = foldName(a);
  const y = foldName(b);
  if (x.trim() === '' || y.trim() === '') return 0;
  return (token_sort_ratio(x, y) + token_set_ratio(x, y)) / 200;
}

/** A reference reduced to its letters and digits, upper case: "INV-2024/001" → "INV2024001". */
export function foldReference(reference: string | null): string {
  return reference
    ? foldName(reference)
        .replace(/[^a-z0-9]/g, '')
        .toUpperCase()
    : '';
}
