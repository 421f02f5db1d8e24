import { fail, ok, type Result } from '../core/result.js';
import { canSeeAccount, type Principal } from '../keys/principal.js';
import type { Db } from '../store/db.js';
import { type AccountRow, findAccount } from './repo.js';

/**
 * Loads an account for a caller: another organization's account does not exist for it (404); an
 * account of its organization outside a restricted key's list is forbidden (403).
 */
export async function accountFor(db: Db, principal: Principal, accountId: string): Promise<Result<AccountRow>> {
  const account = await findAccount(db, principal.orgId, accountId);
  if (!account) return fail('NOT_FOUND', 'account not found');
  if (!canSeeAccount(principal, accountId)) return fail('FORBIDDEN', 'this key is restricted to other accounts');
  return ok(account);
}
