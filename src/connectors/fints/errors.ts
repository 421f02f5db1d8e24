import type { BankAnswer } from 'lib-fints';
import { ConnectorError } from '../sdk.js';

/** Return codes that mean the PIN (or the user id) was refused. */
const WRONG_PIN = new Set([9340, 9942]);
/** Return codes that mean the access is locked. */
const LOCKED = new Set([3931, 3938, 9930, 9931, 9938]);
/** Return codes for a wrong TAN (the challenge stays open). */
export const WRONG_TAN = new Set([9941]);
/** Return codes for a challenge the bank no longer accepts (expired, cancelled). */
const CHALLENGE_ENDED = new Set([9951, 9952, 3956]);

/** The bank's words for the log and the failure message: code and text, never a parameter (they may echo input). */
export function describe(answers: readonly BankAnswer[]): string {
  const errors = answers.filter((a) => a.code >= 9000 || LOCKED.has(a.code));
  const shown = errors.length > 0 ? errors : answers;
  return shown.map((a) => `${String(a.code).padStart(4, '0')} ${a.text}`).join('; ');
}

export function has(answers: readonly BankAnswer[], codes: ReadonlySet<number>): boolean {
  return answers.some((a) => codes.has(a.code));
}

/** The connector error for a failed bank answer (success false, no TAN asked). */
export function failureOf(answers: readonly BankAnswer[], context: string): ConnectorError {
  const words = describe(answers);
  if (has(answers, LOCKED))
    return new ConnectorError('account_locked', `the bank reports the access locked (${words})`);
  if (has(answers, WRONG_PIN))
    return new ConnectorError('invalid_credentials', `the bank refused the user id or PIN (${words})`);
  if (has(answers, CHALLENGE_ENDED))
    return new ConnectorError('code_rejected', `the bank closed the TAN challenge (${words})`);
  return new ConnectorError('connector_broken', `unexpected FinTS answer to ${context}: ${words || 'no return code'}`);
}

/**
 * Runs one client call: a cancelled login ends at once (the library takes no abort signal, so its
 * request is left to finish on its own), a transport failure or an HTTP error status is the bank
 * being unavailable, anything else the library throws is an answer it could not read.
 */
export async function call<T>(signal: AbortSignal, what: string, run: () => Promise<T>): Promise<T> {
  signal.throwIfAborted();
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    return await Promise.race([run(), aborted]);
  } catch (err) {
    if (signal.aborted || err instanceof ConnectorError) throw err;
    const message = err instanceof Error ? err.message : String(err);
    const status = /^Request failed with status code (\d{3})/.exec(message);
    if (status)
      throw new ConnectorError('bank_unavailable', `the FinTS server answered HTTP ${status[1]} to ${what}`, {
        cause: err,
      });
    if (err instanceof TypeError && /fetch failed/i.test(message))
      throw new ConnectorError('bank_unavailable', `the FinTS server could not be reached (${what})`, { cause: err });
    throw new ConnectorError('connector_broken', `the FinTS answer to ${what} could not be read`, { cause: err });
  } finally {
    if (onAbort) signal.removeEventListener('abort', onAbort);
    aborted.catch(() => {});
  }
}
