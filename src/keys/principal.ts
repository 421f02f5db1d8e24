import type { Actor } from '../audit/repo.js';
import type { Scope } from '../core/scopes.js';

/** Who is calling, resolved from credentials at the HTTP edge. */
export interface Principal {
  orgId: string;
  actor: Actor;
  scopes: ReadonlySet<Scope>;
  /** null = every account of the organization. */
  accountIds: ReadonlySet<string> | null;
}

export function canSeeAccount(principal: Principal, accountId: string): boolean {
  return principal.accountIds === null || principal.accountIds.has(accountId);
}
