import type { Kysely } from 'kysely';
import { newId } from '../core/ids.js';
import type { Database } from '../store/schema.js';

/** Who did something. Users arrive with the dashboard issue; API keys and the system exist now. */
export interface Actor {
  type: 'user' | 'api_key' | 'app_token' | 'system';
  id: string | null;
}

export interface AuditEntry {
  orgId: string;
  actor: Actor;
  action: string;
  accountId?: string | null;
  targetId?: string | null;
  outcome?: string | null;
  /** Never secrets or codes. */
  details?: Record<string, unknown>;
}

export async function recordAudit(db: Kysely<Database>, entry: AuditEntry, now: number): Promise<void> {
  await db
    .insertInto('audit_log')
    .values({
      id: newId('aud', now),
      org_id: entry.orgId,
      actor_type: entry.actor.type,
      actor_id: entry.actor.id,
      action: entry.action,
      account_id: entry.accountId ?? null,
      target_id: entry.targetId ?? null,
      outcome: entry.outcome ?? null,
      details: entry.details ? JSON.stringify(entry.details) : null,
      created_at: now,
    })
    .execute();
}
