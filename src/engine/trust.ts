import type { TrustStore } from '../connectors/sdk.js';
import type { Clock } from '../core/time.js';
import type { Transact } from '../events/outbox.js';
import type { Cipher } from '../security/cipher.js';
import type { Db } from '../store/db.js';

const WARN_BATCH = 500;

/**
 * Part of the scheduler tick: one `trust_expiring` event per stored trust token whose end is within
 * `leadMs`, so someone can plan the next login that will need a code (instead of meeting it at night).
 * A token already expired gets no warning: the next login simply asks for a code. Returns how many
 * warnings it wrote.
 */
export async function warnExpiringTrust(deps: {
  db: Db;
  transact: Transact;
  clock: Clock;
  leadMs: number;
}): Promise<number> {
  const now = deps.clock();
  const due = await deps.db
    .selectFrom('accounts')
    .select(['id', 'org_id', 'trust_expires_at'])
    .where('trust_warned_at', 'is', null)
    .where('trust_expires_at', '<=', now + deps.leadMs)
    .where('trust_expires_at', '>', now)
    .where('trust_enc', 'is not', null)
    .limit(WARN_BATCH)
    .execute();
  if (due.length === 0) return 0;
  return deps.transact(async (trx, uow) => {
    let warned = 0;
    for (const account of due) {
      // Compare-and-set on the expiry read: a token replaced meanwhile is not marked by this warning.
      const marked = await trx
        .updateTable('accounts')
        .set({ trust_warned_at: now })
        .where('id', '=', account.id)
        .where('trust_warned_at', 'is', null)
        .where('trust_expires_at', '=', account.trust_expires_at)
        .executeTakeFirst();
      if (Number(marked.numUpdatedRows) !== 1) continue;
      uow.emit({
        orgId: account.org_id,
        accountId: account.id,
        type: 'trust_expiring',
        data: { expires_at: new Date(account.trust_expires_at!).toISOString() },
      });
      warned++;
    }
    return warned;
  });
}

/** The connector's trust store for one account: its value encrypted in the account row, bound to the account. */
export function makeTrustStore(deps: { db: Db; transact: Transact; cipher: Cipher; accountId: string }): TrustStore {
  const context = `${deps.accountId}:trust`;
  return {
    async get() {
      const row = await deps.db
        .selectFrom('accounts')
        .select('trust_enc')
        .where('id', '=', deps.accountId)
        .executeTakeFirst();
      return row?.trust_enc ? deps.cipher.decrypt(row.trust_enc, context) : null;
    },
    async set(value, options = {}) {
      const expiresAt = value === null ? null : (options.expires_at?.getTime() ?? null);
      await deps.transact(async (trx, uow) => {
        await trx
          .updateTable('accounts')
          .set({
            trust_enc: value === null ? null : deps.cipher.encrypt(value, context),
            trust_expires_at: Number.isFinite(expiresAt) ? expiresAt : null,
            // A new token gets its own warning.
            trust_warned_at: null,
          })
          .where('id', '=', deps.accountId)
          .execute();
        uow.touch(deps.accountId);
      });
    },
  };
}

/** Records that the bank asked for a code (or an approval) although trust was stored for the account. */
export async function noteTrustChallenged(
  deps: { transact: Transact; clock: Clock },
  accountId: string,
): Promise<void> {
  await deps.transact(async (trx, uow) => {
    await trx.updateTable('accounts').set({ trust_challenged_at: deps.clock() }).where('id', '=', accountId).execute();
    uow.touch(accountId);
  });
}
