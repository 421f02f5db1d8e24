import { accountFor } from '../accounts/access.js';
import { recordAudit } from '../audit/repo.js';
import { fail, ok, type Result } from '../core/result.js';
import type { Clock } from '../core/time.js';
import type { Transact } from '../events/outbox.js';
import type { Principal } from '../keys/principal.js';
import type { Db } from '../store/db.js';
import { findSession, type SessionView, sessionView } from './repo.js';
import { queueLogin, requestCancel } from './transitions.js';

export interface QueuedScrape {
  queued: boolean;
  session_id: string;
}

export interface SessionsService {
  /** Queues a scrape; runs even when the account is blocked and leaves the block in place. */
  scrape(principal: Principal, accountId: string): Promise<Result<QueuedScrape>>;
  /** Clears the block and queues a scrape (or reports the session already active). */
  restart(principal: Principal, accountId: string): Promise<Result<QueuedScrape>>;
  cancel(principal: Principal, sessionId: string): Promise<Result<SessionView>>;
  get(principal: Principal, sessionId: string): Promise<Result<SessionView>>;
}

export function makeSessionsService(deps: { db: Db; transact: Transact; clock: Clock }): SessionsService {
  const { db, transact, clock } = deps;

  async function visibleSession(principal: Principal, sessionId: string) {
    const session = await findSession(db, principal.orgId, sessionId);
    if (!session) return fail('NOT_FOUND', 'session not found');
    const account = await accountFor(db, principal, session.account_id);
    if (!account.ok) return account;
    return ok(session);
  }

  return {
    async scrape(principal, accountId) {
      const found = await accountFor(db, principal, accountId);
      if (!found.ok) return found;
      const now = clock();
      const id = await transact(async (trx, uow) => {
        const login = await queueLogin(trx, uow, {
          orgId: principal.orgId,
          accountId,
          trigger: 'manual',
          now,
          join: false,
        });
        if (login) {
          await recordAudit(
            trx,
            {
              orgId: principal.orgId,
              actor: principal.actor,
              action: 'account.scrape',
              accountId,
              targetId: login.sessionId,
              outcome: 'queued',
            },
            now,
          );
        }
        return login?.sessionId ?? null;
      });
      if (!id) return fail('CONFLICT', 'a session is already active for this account');
      return ok({ queued: true, session_id: id });
    },

    async restart(principal, accountId) {
      const found = await accountFor(db, principal, accountId);
      if (!found.ok) return found;
      const now = clock();
      return ok(
        await transact(async (trx, uow) => {
          await trx
            .updateTable('accounts')
            .set({ blocked_at: null, blocked_reason: null, consecutive_failures: 0, updated_at: now })
            .where('id', '=', accountId)
            .execute();
          const login = await queueLogin(trx, uow, {
            orgId: principal.orgId,
            accountId,
            trigger: 'restart',
            now,
            join: true,
          });
          if (!login) throw new Error('no session queued and none active');
          await recordAudit(
            trx,
            {
              orgId: principal.orgId,
              actor: principal.actor,
              action: 'account.restart',
              accountId,
              targetId: login.sessionId,
              outcome: login.queued ? 'queued' : 'already_active',
            },
            now,
          );
          uow.touch(accountId);
          return { queued: login.queued, session_id: login.sessionId };
        }),
      );
    },

    async cancel(principal, sessionId) {
      const found = await visibleSession(principal, sessionId);
      if (!found.ok) return found;
      const session = found.value;
      const now = clock();
      switch (session.state) {
        case 'succeeded':
        case 'failed':
        case 'cancelled':
          return fail('CONFLICT', `the session already ended (${session.state})`);
        case 'queued':
        case 'running':
        case 'awaiting_assistance':
          break;
        default: {
          const never: never = session.state;
          throw new Error(`unknown state ${String(never)}`);
        }
      }
      await transact(async (trx, uow) => {
        await requestCancel(trx, uow, sessionId, now);
        await recordAudit(
          trx,
          {
            orgId: principal.orgId,
            actor: principal.actor,
            action: 'session.cancel',
            accountId: session.account_id,
            targetId: sessionId,
            outcome: 'requested',
          },
          now,
        );
        uow.touch(session.account_id);
      });
      const after = await findSession(db, principal.orgId, sessionId);
      return ok(sessionView(after!));
    },

    async get(principal, sessionId) {
      const found = await visibleSession(principal, sessionId);
      return found.ok ? ok(sessionView(found.value)) : found;
    },
  };
}
