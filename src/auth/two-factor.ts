import { randomBytes } from 'node:crypto';
import { Secret, TOTP } from 'otpauth';
import QRCode from 'qrcode';
import type { Static } from 'typebox';
import { recordAudit } from '../audit/repo.js';
import { fail, ok, type Result } from '../core/result.js';
import type { Clock } from '../core/time.js';
import { hashSecret, sameHash } from '../security/api-keys.js';
import type { Cipher } from '../security/cipher.js';
import { verifyPassword } from '../security/passwords.js';
import type { Db } from '../store/db.js';
import type { UsersTable } from '../store/schema.js';
import type { EnrollmentSchema, TwoFactorStatusSchema } from './schemas.js';

/** Backup codes issued at confirmation; each works once. */
export const BACKUP_CODE_COUNT = 10;
/** Steps of clock drift accepted either side (30 s each). */
const DRIFT_STEPS = 1;
const ISSUER = 'otpilot';

export type TwoFactorStatus = Static<typeof TwoFactorStatusSchema>;

export type Enrollment = Static<typeof EnrollmentSchema>;

export interface TwoFactor {
  status(userId: string): Promise<TwoFactorStatus>;
  /** Starts (or restarts) enrollment with the password (a stolen session must not bind its own device); refused while 2FA is on. */
  setup(userId: string, password: string): Promise<Result<Enrollment>>;
  /** Turns 2FA on with a first valid code; the backup codes are returned this once. */
  confirm(userId: string, code: string): Promise<Result<{ backup_codes: string[] }>>;
  /** Needs the password and a current code (or a backup code). */
  disable(userId: string, password: string, code: string): Promise<Result<null>>;
  /** The sign-in check: a TOTP code (not replayed) or an unused backup code. */
  verify(user: UsersTable, code: string): Promise<boolean>;
}

const context = (userId: string) => `${userId}:totp`;

const totpFor = (secret: string, email: string) =>
  new TOTP({ issuer: ISSUER, label: email, secret: Secret.fromBase32(secret) });

/** `abcd-efgh`: easy to read out and type; 40 bits each, and each works once. */
function newBackupCode(): string {
  const alphabet = 'abcdefghjkmnpqrstuvwxyz23456789';
  const bytes = randomBytes(8);
  const chars = [...bytes].map((byte) => alphabet[byte % alphabet.length]);
  return `${chars.slice(0, 4).join('')}-${chars.slice(4).join('')}`;
}

const normalizeBackup = (code: string) => code.trim().toLowerCase().replace(/[\s-]/g, '');

export function makeTwoFactor(deps: { db: Db; cipher: Cipher; clock: Clock }): TwoFactor {
  const { db, cipher, clock } = deps;

  const load = (userId: string) =>
    db.selectFrom('users').selectAll().where('id', '=', userId).executeTakeFirstOrThrow();

  /** The step a code belongs to, or null; uses the injected clock so tests can move time. */
  function matchStep(user: UsersTable, code: string): number | null {
    if (!user.totp_secret_enc || !/^[0-9]{6}$/.test(code.replace(/\s/g, ''))) return null;
    const totp = totpFor(cipher.decrypt(user.totp_secret_enc, context(user.id)), user.email);
    const now = clock();
    const delta = totp.validate({ token: code.replace(/\s/g, ''), timestamp: now, window: DRIFT_STEPS });
    return delta === null ? null : Math.floor(now / 1000 / totp.period) + delta;
  }

  /** Accepts a step once: compare-and-set on the last step, so two sign-ins racing with one code can't both pass. */
  async function claimStep(user: UsersTable, step: number): Promise<boolean> {
    if (user.totp_last_step !== null && step <= user.totp_last_step) return false;
    let update = db.updateTable('users').set({ totp_last_step: step }).where('id', '=', user.id);
    update =
      user.totp_last_step === null
        ? update.where('totp_last_step', 'is', null)
        : update.where('totp_last_step', '=', user.totp_last_step);
    const result = await update.executeTakeFirst();
    return result.numUpdatedRows === 1n;
  }

  async function spendBackupCode(user: UsersTable, code: string): Promise<boolean> {
    if (!user.backup_codes) return false;
    const hashes = JSON.parse(user.backup_codes) as string[];
    const hash = hashSecret(normalizeBackup(code));
    const index = hashes.findIndex((candidate) => sameHash(candidate, hash));
    if (index < 0) return false;
    const rest = hashes.filter((_, i) => i !== index);
    const result = await db
      .updateTable('users')
      .set({ backup_codes: JSON.stringify(rest) })
      .where('id', '=', user.id)
      .where('backup_codes', '=', user.backup_codes)
      .executeTakeFirst();
    return result.numUpdatedRows === 1n;
  }

  async function verify(user: UsersTable, code: string): Promise<boolean> {
    if (user.totp_enabled_at === null) return false;
    const step = matchStep(user, code);
    if (step !== null) return claimStep(user, step);
    return spendBackupCode(user, code);
  }

  return {
    async status(userId) {
      const user = await load(userId);
      return {
        enabled: user.totp_enabled_at !== null,
        pending: user.totp_enabled_at === null && user.totp_secret_enc !== null,
        backup_codes_left: user.backup_codes ? (JSON.parse(user.backup_codes) as string[]).length : 0,
      };
    },

    async setup(userId, password) {
      const user = await load(userId);
      if (user.totp_enabled_at !== null) return fail('CONFLICT', 'two-factor sign-in is already on; disable it first');
      if (!user.password_hash || !(await verifyPassword(password, user.password_hash))) {
        return fail('FORBIDDEN', 'the password is wrong');
      }
      const secret = new Secret({ size: 20 }).base32;
      await db
        .updateTable('users')
        .set({ totp_secret_enc: cipher.encrypt(secret, context(userId)), totp_last_step: null, updated_at: clock() })
        .where('id', '=', userId)
        .execute();
      const url = totpFor(secret, user.email).toString();
      return ok({ secret, otpauth_url: url, qr_svg: await QRCode.toString(url, { type: 'svg', margin: 1 }) });
    },

    async confirm(userId, code) {
      const user = await load(userId);
      if (user.totp_enabled_at !== null) return fail('CONFLICT', 'two-factor sign-in is already on');
      if (!user.totp_secret_enc) return fail('CONFLICT', 'start with POST /me/2fa/setup');
      const step = matchStep(user, code);
      if (step === null || !(await claimStep(user, step))) {
        return fail('VALIDATION_FAILED', 'that code is not valid now; check the authenticator and the clock', [
          { path: '/code', message: 'not the current code' },
        ]);
      }
      const codes = Array.from({ length: BACKUP_CODE_COUNT }, newBackupCode);
      const now = clock();
      // Only the secret the code was checked against: a setup racing in between must not be switched on unseen.
      const enabled = await db
        .updateTable('users')
        .set({
          totp_enabled_at: now,
          backup_codes: JSON.stringify(codes.map((c) => hashSecret(normalizeBackup(c)))),
          updated_at: now,
        })
        .where('id', '=', userId)
        .where('totp_secret_enc', '=', user.totp_secret_enc)
        .where('totp_enabled_at', 'is', null)
        .executeTakeFirst();
      if (enabled.numUpdatedRows !== 1n) return fail('CONFLICT', 'the enrollment changed meanwhile; start again');
      await recordAudit(
        db,
        { orgId: user.org_id, actor: { type: 'user', id: userId }, action: 'auth.2fa_enabled', outcome: 'ok' },
        now,
      );
      return ok({ backup_codes: codes });
    },

    async disable(userId, password, code) {
      const user = await load(userId);
      if (user.totp_enabled_at === null) return fail('CONFLICT', 'two-factor sign-in is not on');
      const passwordOk = user.password_hash !== null && (await verifyPassword(password, user.password_hash));
      if (!passwordOk || !(await verify(user, code))) {
        return fail('FORBIDDEN', 'the password or the code is wrong');
      }
      const now = clock();
      await db
        .updateTable('users')
        .set({
          totp_secret_enc: null,
          totp_enabled_at: null,
          totp_last_step: null,
          backup_codes: null,
          updated_at: now,
        })
        .where('id', '=', userId)
        .execute();
      await recordAudit(
        db,
        { orgId: user.org_id, actor: { type: 'user', id: userId }, action: 'auth.2fa_disabled', outcome: 'ok' },
        now,
      );
      return ok(null);
    },

    verify,
  };
}
