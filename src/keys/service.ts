import type { Static } from 'typebox';
import { missingAccounts } from '../accounts/repo.js';
import { type Actor, recordAudit } from '../audit/repo.js';
import { newId } from '../core/ids.js';
import { fail, ok, type Result } from '../core/result.js';
import { INSTANCE_SCOPES, parseScopes, SCOPES, type Scope } from '../core/scopes.js';
import { type Clock, iso } from '../core/time.js';
import { generateApiKey, hashSecret, parseApiKey, sameHash } from '../security/api-keys.js';
import type { Db } from '../store/db.js';
import type { ApiKeysTable } from '../store/schema.js';
import type { Principal } from './principal.js';
import type { KeySchema } from './schemas.js';

/** An API key as listed (never the secret). */
export type ApiKeyView = Static<typeof KeySchema>;

export interface CreateKeyInput {
  orgId: string;
  name: string;
  scopes: string;
  accountIds: string[] | null;
  createdBy: string | null;
}

/** Verified keys are cached this long, ms: revocation in this process is immediate (cache cleared). */
const CACHE_MS = 5_000;

export interface KeysService {
  /** Returns the full key once, with the stored record. */
  create(input: CreateKeyInput): Promise<Result<ApiKeyView & { key: string }>>;
  /** The caller behind a key, or null for an unknown, malformed or revoked key (the same for all three). */
  authenticate(key: string): Promise<Principal | null>;
  /** `actor` defaults to the system (the command line). */
  revoke(orgId: string, id: string, actor?: Actor): Promise<boolean>;
  /** The organization's keys, newest first; only those `createdBy` made when it is given. */
  list(orgId: string, createdBy?: string): Promise<ApiKeyView[]>;
}

function keyView(row: ApiKeysTable): ApiKeyView {
  return {
    id: row.id,
    name: row.name,
    prefix: row.prefix,
    scopes: JSON.parse(row.scopes) as Scope[],
    account_ids: row.account_ids ? (JSON.parse(row.account_ids) as string[]) : null,
    created_at: iso(row.created_at),
    last_used_at: iso(row.last_used_at),
    revoked_at: iso(row.revoked_at),
  };
}

export function makeKeysService(deps: { db: Db; clock: Clock }): KeysService {
  const { db, clock } = deps;
  const cache = new Map<string, { principal: Principal; until: number }>();

  return {
    async create(input) {
      const { scopes, unknown } = parseScopes(input.scopes);
      if (unknown.length > 0) {
        return fail('VALIDATION_FAILED', `unknown scopes: ${unknown.join(', ')}`, [
          { path: '/scopes', message: `allowed: ${SCOPES.join(', ')} or * (and ${INSTANCE_SCOPES.join(', ')})` },
        ]);
      }
      if (scopes.length === 0)
        return fail('VALIDATION_FAILED', 'a key needs at least one scope', [{ path: '/scopes', message: 'is empty' }]);
      if (input.accountIds) {
        const missing = await missingAccounts(db, input.orgId, input.accountIds);
        if (missing.length > 0) {
          return fail('VALIDATION_FAILED', `unknown accounts: ${missing.join(', ')}`, [
            { path: '/account_ids', message: 'no such account' },
          ]);
        }
      }
      const generated = generateApiKey();
      const now = clock();
      const id = newId('key', now);
      const row: ApiKeysTable = {
        id,
        org_id: input.orgId,
        name: input.name,
        prefix: generated.prefix,
        secret_hash: generated.secretHash,
        scopes: JSON.stringify(scopes),
        account_ids: input.accountIds ? JSON.stringify(input.accountIds) : null,
        created_by: input.createdBy,
        created_at: now,
        last_used_at: null,
        revoked_at: null,
      };
      await db.insertInto('api_keys').values(row).execute();
      await recordAudit(
        db,
        {
          orgId: input.orgId,
          actor: { type: input.createdBy ? 'user' : 'system', id: input.createdBy },
          action: 'api_key.create',
          targetId: id,
          outcome: 'ok',
          details: { name: input.name, scopes, account_ids: input.accountIds },
        },
        now,
      );
      return ok({ ...keyView(row), key: generated.key });
    },

    async authenticate(key) {
      const now = clock();
      const cached = cache.get(key);
      if (cached && cached.until > now) return cached.principal;
      const parsed = parseApiKey(key);
      if (!parsed) return null;
      const row = await db.selectFrom('api_keys').selectAll().where('prefix', '=', parsed.prefix).executeTakeFirst();
      // Hash even when no row matched, so timing does not tell a wrong prefix from a wrong secret.
      const presented = hashSecret(parsed.secret);
      if (!row || !sameHash(presented, row.secret_hash) || row.revoked_at !== null) return null;
      const principal: Principal = {
        orgId: row.org_id,
        actor: { type: 'api_key', id: row.id },
        scopes: new Set(JSON.parse(row.scopes) as Scope[]),
        accountIds: row.account_ids ? new Set(JSON.parse(row.account_ids) as string[]) : null,
      };
      if (cache.size > 10_000) cache.clear();
      cache.set(key, { principal, until: now + CACHE_MS });
      if (row.last_used_at === null || now - row.last_used_at > 60_000) {
        await db.updateTable('api_keys').set({ last_used_at: now }).where('id', '=', row.id).execute();
      }
      return principal;
    },

    async list(orgId, createdBy) {
      let q = db.selectFrom('api_keys').selectAll().where('org_id', '=', orgId);
      if (createdBy !== undefined) q = q.where('created_by', '=', createdBy);
      return (await q.orderBy('id', 'desc').execute()).map(keyView);
    },

    async revoke(orgId, id, actor = { type: 'system', id: null }) {
      const now = clock();
      const result = await db
        .updateTable('api_keys')
        .set({ revoked_at: now })
        .where('org_id', '=', orgId)
        .where('id', '=', id)
        .where('revoked_at', 'is', null)
        .executeTakeFirst();
      cache.clear();
      const revoked = Number(result.numUpdatedRows) === 1;
      if (revoked) await recordAudit(db, { orgId, actor, action: 'api_key.revoke', targetId: id, outcome: 'ok' }, now);
      return revoked;
    },
  };
}
