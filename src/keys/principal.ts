import type { Actor } from '../audit/repo.js';
import { type Failure, fail } from '../core/result.js';
import type { Scope } from '../core/scopes.js';

/** Who is calling, resolved from credentials at the HTTP edge. */
export interface Principal {
  orgId: string;
  actor: Actor;
  scopes: ReadonlySet<Scope>;
  /** null = every account of the organization. */
  accountIds: ReadonlySet<string> | null;
}

export function canSeeAccount(principal: Pick<Principal, 'accountIds'>, accountId: string): boolean {
  return principal.accountIds === null || principal.accountIds.has(accountId);
}

/**
 * The refusal for something that reaches every account of the organization (creating accounts,
 * relays, app tokens) when the key is limited to some accounts; null when the caller may.
 */
export function refuseIfRestricted(principal: Principal, what: string): Failure | null {
  return principal.accountIds === null
    ? null
    : fail('FORBIDDEN', `a key restricted to some accounts cannot ${what} (it reaches every account)`);
}
