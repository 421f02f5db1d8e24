/** What the bank asks for when it pauses a login. */
export interface CodeDescriptor {
  /** Exact number of characters, or null when the bank does not say. */
  length: number | null;
  /** `numeric`: digits only; `alphanumeric`: ASCII letters and digits. */
  type: CodeType;
  /** Why the bank asks, e.g. `login`. */
  purpose: string;
  /** The bank's own words, if any. */
  prompt: string | null;
  /** Where the code comes from, when the connector knows: an SMS, or an authenticator app (TOTP). */
  channel?: CodeChannel | null;
}

export type CodeChannel = 'sms' | 'authenticator';

/** What the bank says when it waits for the user to approve the login in its app (no code, no length). */
export interface ApprovalDescriptor {
  /** Why the bank asks, e.g. `login`. */
  purpose: string;
  /** The bank's own words, if any. */
  prompt: string | null;
}

export type CodeType = 'numeric' | 'alphanumeric';

export type CodeCheck = { ok: true; code: string } | { ok: false; reason: string };

/** Longest code accepted whatever the descriptor says (docs/api.md "One-time codes"). */
export const MAX_CODE_LENGTH = 32;

/** Drops the spaces and dashes people and SMS texts put inside codes. */
export function normalizeCode(raw: string): string {
  return raw.replace(/[\s-]+/g, '');
}

/** Validates a code against a descriptor before anything reaches the bank. */
export function checkCode(raw: string, descriptor: Pick<CodeDescriptor, 'length' | 'type'>): CodeCheck {
  const code = normalizeCode(raw);
  if (code.length === 0) return { ok: false, reason: 'the code is empty' };
  if (code.length > MAX_CODE_LENGTH) return { ok: false, reason: `a code has at most ${MAX_CODE_LENGTH} characters` };
  switch (descriptor.type) {
    case 'numeric':
      if (!/^[0-9]+$/.test(code)) return { ok: false, reason: 'the code must contain digits only' };
      break;
    case 'alphanumeric':
      if (!/^[A-Za-z0-9]+$/.test(code)) return { ok: false, reason: 'the code must contain letters and digits only' };
      break;
    default: {
      const never: never = descriptor.type;
      throw new Error(`unknown code type ${String(never)}`);
    }
  }
  if (descriptor.length !== null && code.length !== descriptor.length) {
    return { ok: false, reason: `the code must have exactly ${descriptor.length} characters` };
  }
  return { ok: true, code };
}
