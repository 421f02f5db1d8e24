import type { AccountsService } from '../accounts/service.js';
import type { Clock } from '../core/time.js';
import type { KeysService } from '../keys/service.js';
import type { Db } from '../store/db.js';
import { createOrganization } from './service.js';

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

/** The services bootstrap uses, bound to its transaction. */
export interface BootstrapServices {
  keys: KeysService;
  accounts: AccountsService;
}

/**
 * On an empty store: one organization, an admin user, an API key with every scope and (with the
 * sandbox on) one sandbox account, so the README tour works at once. Does nothing otherwise.
 *
 * All or nothing: everything is written in one transaction and `deliver` (which shows or stores the
 * secrets) runs before it commits. If the secrets cannot be delivered, nothing is kept and the next
 * start tries again; a store is never left with an admin nobody knows the password of.
 */
export async function bootstrapIfEmpty(deps: {
  db: Db;
  clock: Clock;
  /** Builds the services on the bootstrap's transaction. */
  services(trx: Db): BootstrapServices;
  sandbox: boolean;
  deliver(result: BootstrapResult): void | Promise<void>;
}): Promise<BootstrapResult | null> {
  return deps.db.transaction().execute(async (trx) => {
    const existing = await trx.selectFrom('organizations').select('id').limit(1).executeTakeFirst();
    if (existing) return null;
    const { keys, accounts } = deps.services(trx);
    const created = await createOrganization(trx, {
      clock: deps.clock,
      keys,
      name: 'My organization',
      adminEmail: 'admin@otpilot.local',
      actor: { type: 'system', id: null },
    });
    let sandboxAccountId: string | null = null;
    if (deps.sandbox) {
      const account = await accounts.create(
        { orgId: created.orgId, actor: { type: 'system', id: null }, scopes: new Set(), accountIds: null },
        {
          bank_id: 'sandbox',
          name: TOUR_ACCOUNT.name,
          credentials: { username: TOUR_ACCOUNT.username, password: TOUR_ACCOUNT.password },
        },
      );
      if (!account.ok) throw new Error(`bootstrap account: ${account.message}`);
      sandboxAccountId = account.value.id;
    }
    const result: BootstrapResult = { ...created, sandboxAccountId };
    await deps.deliver(result);
    return result;
  });
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
