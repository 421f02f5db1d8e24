import type { CodeChannel } from '../core/descriptor.js';
import { hasRelay } from '../relay/repo.js';
import type { Db } from '../store/db.js';

/**
 * Ways a code can reach a waiting login besides TOTP (which the hand-off computes itself): a person
 * in the dashboard, or an SMS relay. Integrators posting codes with an API key are not counted: a
 * key existing says nothing about anyone using it now.
 */
export type CodeSource = 'operator' | 'relay';

/**
 * An operator or admin whose dashboard session was used this recently counts as present. An open
 * dashboard re-checks its session at least once a minute (its event stream), so a quarter of an
 * hour covers a dashboard left open, and not one closed long ago.
 */
export const OPERATOR_PRESENT_MS = 15 * 60_000;

/**
 * Which sources could answer a code request of this account right now. An SMS relay only helps SMS
 * (or unspecified) codes, and only when the account says where its SMS arrive (`otp_phone`).
 */
export async function availableCodeSources(
  db: Db,
  input: { orgId: string; otpPhone: string | null; channel: CodeChannel | null; now: number },
): Promise<CodeSource[]> {
  const sources: CodeSource[] = [];
  const operator = await db
    .selectFrom('user_sessions as s')
    .innerJoin('users as u', 'u.id', 's.user_id')
    .select('s.id')
    .where('s.org_id', '=', input.orgId)
    .where('u.role', 'in', ['admin', 'operator'])
    .where('s.revoked_at', 'is', null)
    .where('s.expires_at', '>', input.now)
    .where('s.last_seen_at', '>=', input.now - OPERATOR_PRESENT_MS)
    .limit(1)
    .executeTakeFirst();
  if (operator) sources.push('operator');
  if (input.channel !== 'authenticator' && input.otpPhone !== null && (await hasRelay(db, input.orgId)))
    sources.push('relay');
  return sources;
}
