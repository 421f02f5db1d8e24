import { hash32, rehash } from './hash.js';

/** The behaviour a sandbox user shows, fixed by the part of the username before any `+`. */
export type Behaviour =
  | 'alice'
  | 'otp'
  | 'otp8'
  | 'corporate'
  | 'trust'
  | 'totp'
  | 'approve'
  | 'locked'
  | 'flaky'
  | 'slow';

/** The behaviour table, in the order the portal lists it. */
export const BEHAVIOURS: ReadonlyArray<{ readonly username: Behaviour; readonly description: string }> = [
  { username: 'alice', description: 'No second factor.' },
  { username: 'otp', description: '6-digit SMS code on every login; 3 wrong codes lock the login.' },
  { username: 'otp8', description: '8-character alphanumeric SMS code.' },
  { username: 'corporate', description: 'SMS code only when the last successful login is older than the window.' },
  { username: 'trust', description: 'Like otp, but a trust token from an earlier code skips the code.' },
  { username: 'totp', description: 'Authenticator code for the secret JBSWY3DPEHPK3PXP.' },
  { username: 'approve', description: 'Decoupled approval: approve the login from the phone.' },
  { username: 'locked', description: 'The bank reports the account locked.' },
  { username: 'flaky', description: 'Every other login answers 503.' },
  { username: 'slow', description: 'Every bank call is slow.' },
];

/** The authenticator secret of the `totp` user (base32, RFC 6238 SHA-1, 6 digits, 30 s). */
export const TOTP_SECRET = 'JBSWY3DPEHPK3PXP';

/** Sender name on every SMS. */
export const SMS_SENDER = 'SandboxBank';

const KNOWN = new Set<string>(BEHAVIOURS.map((b) => b.username));

/** Usernames are case-insensitive and ignore surrounding spaces, as at most banks. */
export function normalizeUsername(raw: string): string {
  return raw.trim().toLowerCase();
}

/** The part before any `+`: `otp+42` behaves like `otp`. */
export function baseOf(username: string): string {
  const plus = username.indexOf('+');
  return plus === -1 ? username : username.slice(0, plus);
}

/** The behaviour of a normalized username, or null when the bank does not know it. */
export function behaviourOf(username: string): Behaviour | null {
  const base = baseOf(username);
  return KNOWN.has(base) ? (base as Behaviour) : null;
}

/** A Dutch-looking mobile number (E.164), stable for the full username so `otp+1` and `otp+2` differ. */
export function phoneOf(username: string): string {
  return `+3161${String(hash32(`phone|${username}`) % 10_000_000).padStart(7, '0')}`;
}

const SURNAMES = ['Jansen', 'de Vries', 'van den Berg', 'Bakker', 'Visser', 'Smit', 'Meijer', 'de Boer', 'Mulder'];

/** Name and email shown by the identity endpoint. */
export function profileOf(username: string): { name: string; email: string } {
  const base = baseOf(username);
  const first = base.charAt(0).toUpperCase() + base.slice(1);
  const surname = SURNAMES[rehash(hash32(`name|${username}`), 1) % SURNAMES.length] ?? 'Jansen';
  return { name: `${first} ${surname}`, email: `${username}@sandbox-bank.example` };
}

/** The last four digits, as banks show them in prompts ("•••• 4821"). */
export function maskedPhone(phone: string): string {
  return `•••• ${phone.slice(-4)}`;
}
