/** API key scopes within an organization (docs/api.md "Authentication"); `*` means all of these. */
export const SCOPES = [
  'accounts:read',
  'accounts:write',
  'status:read',
  'otp:read',
  'otp:write',
  'sessions:write',
  'data:read',
  'webhooks:read',
  'webhooks:write',
  'relay:write',
  'reconcile:read',
  'reconcile:write',
  'keys:read',
  'keys:write',
] as const;

/**
 * Scopes over the whole instance, above organizations: never part of `*`, never granted from the
 * dashboard, only by `otpilot keys create --scopes instance:admin` on the server's own machine.
 */
export const INSTANCE_SCOPES = ['instance:admin'] as const;

export type Scope = (typeof SCOPES)[number] | (typeof INSTANCE_SCOPES)[number];

export function isScope(value: string): value is Scope {
  return (SCOPES as readonly string[]).includes(value) || (INSTANCE_SCOPES as readonly string[]).includes(value);
}

/** Parses `a,b` or `*` (every organization scope). Unknown names are returned in `unknown`. */
export function parseScopes(list: string): { scopes: Scope[]; unknown: string[] } {
  const names = list
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (names.length === 1 && names[0] === '*') return { scopes: [...SCOPES], unknown: [] };
  const scopes: Scope[] = [];
  const unknown: string[] = [];
  for (const name of names) {
    if (isScope(name)) {
      if (!scopes.includes(name)) scopes.push(name);
    } else unknown.push(name);
  }
  return { scopes, unknown };
}
