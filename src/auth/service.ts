import { randomBytes } from 'node:crypto';
import type { Static } from 'typebox';
import { recordAudit } from '../audit/repo.js';
import { newId } from '../core/ids.js';
import { fail, ok, type Result } from '../core/result.js';
import { type Clock, iso } from '../core/time.js';
import type { Principal } from '../keys/principal.js';
import { hashSecret } from '../security/api-keys.js';
import { hashPassword, verifyPassword } from '../security/passwords.js';
import type { Db } from '../store/db.js';
import type { UsersTable } from '../store/schema.js';
import { scopesOf } from './roles.js';
import type { UserSchema } from './schemas.js';
import type { TwoFactor } from './two-factor.js';

/** A session ends 7 days after sign-in, or after 24 hours without a request. */
export const SESSION_ABSOLUTE_MS = 7 * 86_400_000;
export const SESSION_IDLE_MS = 86_400_000;
/** Wrong second factors per user (from any address) within the window before sign-in is refused. */
const SECOND_FACTOR_MISSES = 10;
const SECOND_FACTOR_WINDOW_MS = 15 * 60_000;
/** last_seen_at is written at most this often, so reads stay reads. */
const TOUCH_EVERY_MS = 60_000;

export type UserView = Static<typeof UserSchema>;

export const userView = (row: Pick<UsersTable, 'id' | 'email' | 'role' | 'created_at'>): UserView => ({
  id: row.id,
  email: row.email,
  role: row.role,
  created_at: iso(row.created_at),
});

export interface SignedIn {
  user: UserView;
  principal: Principal;
  sessionId: string;
}

export interface AuthService {
  /** Checks the password (scrypt, constant time) and opens a session; the token is returned once. */
  login(
    email: string,
    password: string,
    meta: { userAgent: string | null; totp?: string | undefined },
  ): Promise<Result<{ token: string; user: UserView; expires_at: string }>>;
  authenticate(token: string): Promise<SignedIn | null>;
  logout(token: string): Promise<void>;
}

/** `ots_` + 32 random bytes: distinct from API keys, so neither is ever mistaken for the other. */
const TOKEN_PATTERN = /^ots_[A-Za-z0-9_-]{43}$/;

// Compared against when the email is unknown, so a wrong email costs the same time as a wrong password.
const decoy = hashPassword(randomBytes(16).toString('hex'));

export function makeAuthService(deps: { db: Db; clock: Clock; twoFactor: TwoFactor }): AuthService {
  const { db, clock, twoFactor } = deps;
  return {
    async login(email, password, meta) {
      const user = await db
        .selectFrom('users')
        .selectAll()
        .where('email', '=', email.trim().toLowerCase())
        .executeTakeFirst();
      const valid = await verifyPassword(password, user?.password_hash ?? (await decoy));
      if (!user?.password_hash || !valid) {
        if (user) {
          await recordAudit(
            db,
            {
              orgId: user.org_id,
              actor: { type: 'user', id: user.id },
              action: 'auth.login',
              outcome: 'wrong_password',
            },
            clock(),
          );
        }
        return fail('UNAUTHORIZED', 'the email or password is wrong');
      }
      if (user.totp_enabled_at !== null) {
        // Only after the password: the second-factor question must not tell a stranger who has 2FA.
        if (!meta.totp) {
          return fail('UNAUTHORIZED', 'this user signs in with a second factor: send totp as well', [
            { path: '/totp', message: 'required: the authenticator code or a backup code' },
          ]);
        }
        // The sign-in limit is per address; a known password must not open guessing from many addresses.
        const recentMisses = await db
          .selectFrom('audit_log')
          .select((eb) => eb.fn.countAll<number>().as('n'))
          .where('actor_id', '=', user.id)
          .where('action', '=', 'auth.login')
          .where('outcome', '=', 'wrong_second_factor')
          .where('created_at', '>', clock() - SECOND_FACTOR_WINDOW_MS)
          .executeTakeFirstOrThrow();
        if (Number(recentMisses.n) >= SECOND_FACTOR_MISSES) {
          return {
            ...fail('RATE_LIMITED', 'too many wrong authenticator codes for this user; try again in 15 minutes'),
            retryAfter: SECOND_FACTOR_WINDOW_MS / 1000,
          };
        }
        if (!(await twoFactor.verify(user, meta.totp))) {
          await recordAudit(
            db,
            {
              orgId: user.org_id,
              actor: { type: 'user', id: user.id },
              action: 'auth.login',
              outcome: 'wrong_second_factor',
            },
            clock(),
          );
          return fail('UNAUTHORIZED', 'the authenticator code is wrong or was already used', [
            { path: '/totp', message: 'wrong or already used' },
          ]);
        }
      }
      const now = clock();
      const token = `ots_${randomBytes(32).toString('base64url')}`;
      const expiresAt = now + SESSION_ABSOLUTE_MS;
      await db
        .insertInto('user_sessions')
        .values({
          id: newId('uss', now),
          user_id: user.id,
          org_id: user.org_id,
          token_hash: hashSecret(token),
          user_agent: meta.userAgent?.slice(0, 200) ?? null,
          created_at: now,
          last_seen_at: now,
          expires_at: expiresAt,
          revoked_at: null,
        })
        .execute();
      await recordAudit(
        db,
        { orgId: user.org_id, actor: { type: 'user', id: user.id }, action: 'auth.login', outcome: 'ok' },
        now,
      );
      return ok({ token, user: userView(user), expires_at: iso(expiresAt) });
    },

    async authenticate(token) {
      if (!TOKEN_PATTERN.test(token)) return null;
      const now = clock();
      // The lookup is by hash: the token itself is never stored, and equality on a hash leaks nothing useful.
      const row = await db
        .selectFrom('user_sessions as s')
        .innerJoin('users as u', 'u.id', 's.user_id')
        .select([
          's.id as session_id',
          's.last_seen_at',
          's.expires_at',
          's.revoked_at',
          'u.id',
          'u.org_id',
          'u.email',
          'u.role',
          'u.created_at',
          'u.updated_at',
          'u.password_hash',
        ])
        .where('s.token_hash', '=', hashSecret(token))
        .executeTakeFirst();
      if (!row || row.revoked_at !== null || row.expires_at <= now || now - row.last_seen_at > SESSION_IDLE_MS)
        return null;
      if (now - row.last_seen_at > TOUCH_EVERY_MS) {
        await db.updateTable('user_sessions').set({ last_seen_at: now }).where('id', '=', row.session_id).execute();
      }
      return {
        sessionId: row.session_id,
        user: userView({ ...row, id: row.id }),
        principal: {
          orgId: row.org_id,
          actor: { type: 'user', id: row.id },
          scopes: new Set(scopesOf(row.role)),
          accountIds: null,
        },
      };
    },

    async logout(token) {
      if (!TOKEN_PATTERN.test(token)) return;
      await db
        .updateTable('user_sessions')
        .set({ revoked_at: clock() })
        .where('token_hash', '=', hashSecret(token))
        .where('revoked_at', 'is', null)
        .execute();
    },
  };
}
