import { randomBytes } from 'node:crypto';
import { type Actor, recordAudit } from '../audit/repo.js';
import { newId } from '../core/ids.js';
import { fail, ok, type Result } from '../core/result.js';
import { type Clock, iso } from '../core/time.js';
import type { KeysService } from '../keys/service.js';
import { hashPassword } from '../security/passwords.js';
import type { Db } from '../store/db.js';
import type { UsersTable } from '../store/schema.js';

/** An organization as listed (instance administration). */
export interface OrganizationView {
  id: string;
  name: string;
  created_at: string;
  users: number;
  accounts: number;
}

/** A new organization's first admin and API key; the password and key are shown once. */
export interface CreatedOrganization {
  orgId: string;
  adminEmail: string;
  adminPassword: string;
  apiKey: string;
}

/** Passwords otpilot generates: 16 random characters (96 bits). */
export const generatePassword = (): string => randomBytes(12).toString('base64url');

/** Whether any user, in any organization, has this e-mail address (sign-in is by address alone). */
export async function emailTaken(db: Db, email: string): Promise<boolean> {
  return (await db.selectFrom('users').select('id').where('email', '=', email).executeTakeFirst()) !== undefined;
}

/**
 * Creates an organization with its first admin user (the given password, or a generated one) and an
 * API key with every organization scope. Run it inside a transaction to keep it all-or-nothing.
 */
export async function createOrganization(
  db: Db,
  input: {
    clock: Clock;
    /** Bound to `db`, so the key is part of the same transaction. */
    keys: KeysService;
    name: string;
    adminEmail: string;
    adminPassword?: string;
    actor: Actor;
  },
): Promise<CreatedOrganization> {
  const now = input.clock();
  const orgId = newId('org', now);
  const adminEmail = input.adminEmail.trim().toLowerCase();
  const adminPassword = input.adminPassword ?? generatePassword();
  await db.insertInto('organizations').values({ id: orgId, name: input.name, created_at: now }).execute();
  const userId = newId('usr', now);
  await db
    .insertInto('users')
    .values({
      id: userId,
      org_id: orgId,
      email: adminEmail,
      password_hash: await hashPassword(adminPassword),
      role: 'admin',
      created_at: now,
      updated_at: now,
    })
    .execute();
  const key = await input.keys.create({ orgId, name: 'bootstrap', scopes: '*', accountIds: null, createdBy: userId });
  if (!key.ok) throw new Error(`organization key: ${key.message}`);
  await recordAudit(
    db,
    {
      orgId,
      actor: input.actor,
      action: 'organization.create',
      targetId: orgId,
      outcome: 'ok',
      details: { name: input.name, admin_email: adminEmail },
    },
    now,
  );
  return { orgId, adminEmail, adminPassword, apiKey: key.value.key };
}

/** Every organization with its user and account counts, oldest first. */
export async function listOrganizations(db: Db): Promise<OrganizationView[]> {
  const rows = await db
    .selectFrom('organizations as o')
    .select((eb) => [
      'o.id',
      'o.name',
      'o.created_at',
      eb.selectFrom('users').select(eb.fn.countAll<number>().as('n')).whereRef('users.org_id', '=', 'o.id').as('users'),
      eb
        .selectFrom('accounts')
        .select(eb.fn.countAll<number>().as('n'))
        .whereRef('accounts.org_id', '=', 'o.id')
        .as('accounts'),
    ])
    .orderBy('o.id')
    .execute();
  return rows.map((row) => ({
    id: row.id,
    name: row.name,
    created_at: iso(row.created_at),
    users: Number(row.users ?? 0),
    accounts: Number(row.accounts ?? 0),
  }));
}

/** Sets a user's password, ends their dashboard sessions and (optionally) turns off their two-step sign-in. */
export async function resetPassword(
  db: Db,
  input: { clock: Clock; email: string; password?: string; clearTwoFactor: boolean },
): Promise<Result<{ userId: string; orgId: string; password: string }>> {
  const email = input.email.trim().toLowerCase();
  const user = await db.selectFrom('users').select(['id', 'org_id']).where('email', '=', email).executeTakeFirst();
  if (!user) return fail('NOT_FOUND', `no user ${email}`);
  const password = input.password ?? generatePassword();
  const now = input.clock();
  await db.transaction().execute(async (trx) => {
    await trx
      .updateTable('users')
      .set({
        password_hash: await hashPassword(password),
        updated_at: now,
        ...(input.clearTwoFactor
          ? { totp_secret_enc: null, totp_enabled_at: null, totp_last_step: null, backup_codes: null }
          : {}),
      })
      .where('id', '=', user.id)
      .execute();
    await trx
      .updateTable('user_sessions')
      .set({ revoked_at: now })
      .where('user_id', '=', user.id)
      .where('revoked_at', 'is', null)
      .execute();
    await recordAudit(
      trx,
      {
        orgId: user.org_id,
        actor: { type: 'system', id: null },
        action: 'user.reset_password',
        targetId: user.id,
        outcome: 'ok',
        details: { two_factor_cleared: input.clearTwoFactor },
      },
      now,
    );
  });
  return ok({ userId: user.id, orgId: user.org_id, password });
}

/** A user as created; `temporaryPassword` is set (shown once) when no password was given. */
export interface CreatedUser {
  row: UsersTable;
  temporaryPassword: string | null;
}

/** Adds a user to an organization; CONFLICT when the address is taken in any organization. */
export async function createUser(
  db: Db,
  input: { clock: Clock; orgId: string; email: string; role: UsersTable['role']; password?: string; actor: Actor },
): Promise<Result<CreatedUser>> {
  const email = input.email.trim().toLowerCase();
  const temporaryPassword = input.password ? null : generatePassword();
  const now = input.clock();
  const row: UsersTable = {
    id: newId('usr', now),
    org_id: input.orgId,
    email,
    password_hash: await hashPassword(input.password ?? temporaryPassword!),
    role: input.role,
    created_at: now,
    updated_at: now,
    totp_secret_enc: null,
    totp_enabled_at: null,
    totp_last_step: null,
    backup_codes: null,
  };
  const created = await db.transaction().execute(async (trx) => {
    if (await emailTaken(trx, email)) return false;
    await trx.insertInto('users').values(row).execute();
    await recordAudit(
      trx,
      {
        orgId: input.orgId,
        actor: input.actor,
        action: 'user.create',
        targetId: row.id,
        outcome: 'ok',
        details: { email, role: row.role },
      },
      now,
    );
    return true;
  });
  return created ? ok({ row, temporaryPassword }) : fail('CONFLICT', 'that email is already in use');
}
