import { recordAudit } from '../audit/repo.js';
import { newId } from '../core/ids.js';
import { fail, ok, type Result } from '../core/result.js';
import type { Clock } from '../core/time.js';
import type { Transact } from '../events/outbox.js';
import { type Principal, refuseIfRestricted } from '../keys/principal.js';
import type { Cipher } from '../security/cipher.js';
import type { Db } from '../store/db.js';
import type { RelaysTable } from '../store/schema.js';
import { deleteRelay, findRelay, insertRelay, listRelays } from './repo.js';
import type { RelayProvider, RelayView } from './types.js';

/** Relays as things an organization manages: create, list, remove, and a Twilio relay's signing token. */
export interface RelayManagement {
  create(
    principal: Principal,
    input: { provider: RelayProvider; auth_token?: string },
    baseUrl: string,
  ): Promise<Result<RelayView>>;
  list(principal: Principal, baseUrl: string): Promise<RelayView[]>;
  remove(principal: Principal, id: string): Promise<Result<null>>;
  /** A Twilio relay and its auth token (decrypted, to check a request's signature), or null. */
  twilioRelay(id: string): Promise<{ relay: RelaysTable; authToken: string } | null>;
}

/** The inbound URL a provider calls: Twilio's own route, or the JSON route (with an API key). */
function relayUrl(baseUrl: string, relay: Pick<RelaysTable, 'id' | 'provider'>): string {
  switch (relay.provider) {
    case 'twilio':
      return `${baseUrl}/relay/twilio/${relay.id}`;
    case 'json':
      return `${baseUrl}/v1/relay/sms`;
    default: {
      const never: never = relay.provider;
      throw new Error(`unknown provider ${String(never)}`);
    }
  }
}

const tokenContext = (relayId: string) => `${relayId}:auth_token`;
export function makeRelayManagement(deps: {
  db: Db;
  transact: Transact;
  cipher: Cipher;
  clock: Clock;
}): RelayManagement {
  const { db, transact, cipher, clock } = deps;
  const view = (relay: RelaysTable, baseUrl: string): RelayView => ({
    id: relay.id,
    provider: relay.provider,
    url: relayUrl(baseUrl, relay),
    created_at: new Date(relay.created_at).toISOString(),
  });

  return {
    async create(principal, input, baseUrl) {
      const refused = refuseIfRestricted(principal, 'manage relays');
      if (refused) return refused;
      const token = input.auth_token ?? null;
      if (input.provider === 'twilio' && token === null)
        return fail('VALIDATION_FAILED', 'a Twilio relay needs the auth token that signs its requests', [
          { path: '/auth_token', message: 'is required for provider twilio' },
        ]);
      if (input.provider === 'json' && token !== null)
        return fail('VALIDATION_FAILED', 'JSON relays authenticate with an API key (relay:write), not a token', [
          { path: '/auth_token', message: 'is only for provider twilio' },
        ]);
      const now = clock();
      const id = newId('rly', now);
      const row: RelaysTable = {
        id,
        org_id: principal.orgId,
        provider: input.provider,
        auth_token_enc: token === null ? null : cipher.encrypt(token, tokenContext(id)),
        created_at: now,
      };
      await transact(async (trx) => {
        await insertRelay(trx, row);
        await recordAudit(
          trx,
          {
            orgId: principal.orgId,
            actor: principal.actor,
            action: 'relay.create',
            targetId: id,
            outcome: 'ok',
            details: { provider: input.provider },
          },
          now,
        );
      });
      return ok(view(row, baseUrl));
    },

    async list(principal, baseUrl) {
      return (await listRelays(db, principal.orgId)).map((relay) => view(relay, baseUrl));
    },

    async remove(principal, id) {
      const refused = refuseIfRestricted(principal, 'manage relays');
      if (refused) return refused;
      const removed = await transact(async (trx) => {
        if (!(await deleteRelay(trx, principal.orgId, id))) return false;
        await recordAudit(
          trx,
          { orgId: principal.orgId, actor: principal.actor, action: 'relay.delete', targetId: id, outcome: 'ok' },
          clock(),
        );
        return true;
      });
      return removed ? ok(null) : fail('NOT_FOUND', 'relay not found');
    },

    async twilioRelay(id) {
      const relay = await findRelay(db, id);
      if (relay?.provider !== 'twilio' || relay.auth_token_enc === null) return null;
      return { relay, authToken: cipher.decrypt(relay.auth_token_enc, tokenContext(relay.id)) };
    },
  };
}
