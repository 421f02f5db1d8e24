/** API key scopes (docs/api.md "Authentication"). */
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
] as const;

export type Scope = (typeof SCOPES)[number];

export function isScope(value: string): value is Scope {
  return (SCOPES as readonly string[]).includes(value);
}

/** Parses `a,b` or `*` (every scope). Unknown names are returned in `unknown`. */
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
