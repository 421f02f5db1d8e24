import { setTimeout as delay } from 'node:timers/promises';
import { Secret, TOTP, URI } from 'otpauth';
import { type SubmitDeps, submitCode } from '../assistance/submit.js';

/** An authenticator secret as stored: base32 (`JBSWY3DPEHPK3PXP`) or an `otpauth://totp/…` URI. */
export type TotpParse = { ok: true; totp: TOTP } | { ok: false; reason: string };

export function parseTotpSecret(text: string): TotpParse {
  const value = text.trim();
  try {
    if (value.toLowerCase().startsWith('otpauth://')) {
      const parsed = URI.parse(value);
      return parsed instanceof TOTP
        ? { ok: true, totp: parsed }
        : { ok: false, reason: 'only otpauth://totp URIs are supported' };
    }
    const base32 = value.replace(/[\s-]/g, '').toUpperCase();
    if (!/^[A-Z2-7]+=*$/.test(base32) || base32.replace(/=+$/, '').length < 16) {
      return { ok: false, reason: 'must be a base32 secret (at least 16 characters) or an otpauth://totp URI' };
    }
    return { ok: true, totp: new TOTP({ secret: Secret.fromBase32(base32) }) };
  } catch {
    return { ok: false, reason: 'must be a base32 secret or an otpauth://totp URI' };
  }
}

/**
 * A code generated in the last seconds of its time step may reach the bank after the step ended and
 * be refused; closer to the edge than this, wait for the next step.
 */
export const STEP_EDGE_MS = 5_000;

/** When to generate, and the code then: now, or at the start of the next step when `now` is near the edge. */
export function totpAt(totp: TOTP, now: number): { at: number; code: string } {
  const periodMs = totp.period * 1000;
  const remaining = periodMs - (now % periodMs);
  const at = remaining < STEP_EDGE_MS ? now + remaining : now;
  return { at, code: totp.generate({ timestamp: at }) };
}

/**
 * Answers a waiting authenticator request with the code for the current time step (waiting for the
 * next step when this one is about to end), through the same submission path as every other source.
 * If the bank refuses it, or the secret makes codes of another format, the request stays pending for
 * a person.
 */
export async function answerWithTotp(
  deps: SubmitDeps,
  input: { secret: string; orgId: string; accountId: string; requestId: string; signal: AbortSignal },
): Promise<boolean> {
  const parsed = parseTotpSecret(input.secret);
  if (!parsed.ok) return false;
  const { at, code } = totpAt(parsed.totp, deps.clock());
  const wait = at - deps.clock();
  if (wait > 0) await delay(wait, undefined, { signal: input.signal });
  const submitted = await submitCode(
    deps,
    { via: 'totp', orgId: input.orgId, actor: { type: 'system', id: null } },
    { accountId: input.accountId, requestId: input.requestId },
    code,
  );
  return submitted.ok;
}
