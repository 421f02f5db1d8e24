/** Shorter values are too likely to occur by chance ("1", "on") to be masked everywhere. */
const MIN_SECRET = 3;
const MASK = '[redacted]';

/**
 * Masks every secret of one login (credentials, codes tried, cookie values) wherever it appears in
 * text that leaves the browser: evidence HTML, URLs, console lines and error messages.
 */
export interface Redactor {
  add(secret: string | null | undefined): void;
  apply(text: string): string;
}

function variants(secret: string): string[] {
  // A value can reach a page or a URL encoded; mask the common encodings too.
  const out = new Set([secret, encodeURIComponent(secret), secret.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)]);
  return [...out];
}

export function makeRedactor(): Redactor {
  const secrets = new Set<string>();
  return {
    add(secret) {
      if (typeof secret === 'string' && secret.length >= MIN_SECRET) for (const v of variants(secret)) secrets.add(v);
    },
    apply(text) {
      let out = text;
      // Longest first, so a secret that contains another is masked whole.
      for (const secret of [...secrets].sort((a, b) => b.length - a.length)) out = out.split(secret).join(MASK);
      return out;
    },
  };
}
