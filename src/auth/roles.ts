import { SCOPES, type Scope } from '../core/scopes.js';

/** Dashboard roles: admin (users, keys, settings), operator (accounts, codes, scrapes), viewer (read only). */
export const ROLES = ['admin', 'operator', 'viewer'] as const;
export type Role = (typeof ROLES)[number];

/**
 * What each role may do, in the scopes the routes already check: the dashboard mounts the same
 * routes as `/v1`, so one set of checks serves both.
 */
export function scopesOf(role: Role): Scope[] {
  switch (role) {
    case 'admin':
      return [...SCOPES];
    case 'operator':
      // Everything but managing webhooks, relays and API keys (admin settings).
      return SCOPES.filter(
        (scope) => scope !== 'webhooks:write' && scope !== 'relay:write' && !scope.startsWith('keys:'),
      );
    case 'viewer':
      return SCOPES.filter((scope) => scope.endsWith(':read') && scope !== 'keys:read');
    default: {
      const never: never = role;
      throw new Error(`unknown role ${String(never)}`);
    }
  }
}
