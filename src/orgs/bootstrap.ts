import { randomBytes } from 'node:crypto';
import type { AccountsService } from '../accounts/service.js';
import { newId } from '../core/ids.js';
import type { Clock } from '../core/time.js';
import type { KeysService } from '../keys/service.js';
import { hashPassword } from '../security/passwords.js';
import type { Db } from '../store/db.js';

/** What the first start creates; printed once, never logged. */
export interface BootstrapResult {
  orgId: string;
  adminEmail: string;
  adminPassword: string;
  apiKey: string;
  sandboxAccountId: string | null;
}

/** The tour's account: the sandbox user that asks for a 6-digit SMS code on every login. */
export const TOUR_ACCOUNT = { name: 'Sandbox (SMS code)', username: 'otp', password: 'sandbox' } as const;

/**
 * On an empty store: one organization, an admin user, an API key with every scope and (with the
 * sandbox on) one sandbox account, so the README tour works at once. Does nothing otherwise.
 */
export async function bootstrapIfEmpty(deps: {
  db: Db;
  clock: Clock;
  keys: KeysService;
  accounts: AccountsService;
  sandbox: boolean;
}): Promise<BootstrapResult | null> {
  const existing = await deps.db.selectFrom('organizations').select('id').limit(1).executeTakeFirst();
  if (existing) return null;
  const now = deps.clock();
  const orgId = newId('org', now);
  const adminEmail = 'admin@otpilot.local';
  const adminPassword = randomBytes(12).toString('base64url');
  await deps.db.insertInto('organizations').values({ id: orgId, name: 'My organization', created_at: now }).execute();
  const userId = newId('usr', now);
  await deps.db
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
  const key = await deps.keys.create({ orgId, name: 'bootstrap', scopes: '*', accountIds: null, createdBy: userId });
  if (!key.ok) throw new Error(`bootstrap key: ${key.message}`);
  let sandboxAccountId: string | null = null;
  if (deps.sandbox) {
    const account = await deps.accounts.create(
      { orgId, actor: { type: 'system', id: null }, scopes: new Set(), accountIds: null },
      {
        bank_id: 'sandbox',
        name: TOUR_ACCOUNT.name,
        credentials: { username: TOUR_ACCOUNT.username, password: TOUR_ACCOUNT.password },
      },
    );
    if (!account.ok) throw new Error(`bootstrap account: ${account.message}`);
    sandboxAccountId = account.value.id;
  }
  return { orgId, adminEmail, adminPassword, apiKey: key.value.key, sandboxAccountId };
}

export function formatBootstrap(result: BootstrapResult, baseUrl: string): string {
  return [
    '',
    '  otpilot is set up. These secrets are shown once and stored only as hashes: keep them now.',
    '',
    `  Admin user   ${result.adminEmail}`,
    `  Password     ${result.adminPassword}`,
    `  API key      ${result.apiKey}   (every scope)`,
    result.sandboxAccountId ? `  Tour account ${result.sandboxAccountId}   (sandbox bank, asks for an SMS code)` : '',
    '',
    `  API reference: ${baseUrl}/docs`,
    '',
  ]
    .filter((line, i, all) => line !== '' || all[i - 1] !== '')
    .join('\n');
}
