import type { Logger } from 'pino';
import type { BankSession } from '../connectors/sdk.js';
import type { Clock } from '../core/time.js';
import type { Transact } from '../events/outbox.js';
import type { Db } from '../store/db.js';
import { leaseTerm } from './claim.js';

/** An open bank session kept between scrapes (`session_type: persistent`). */
export interface KeptSession {
  session: BankSession;
  connectorId: string;
  /** When it logged in. */
  since: number;
  /** Ends the login's own signal (its `ctx.signal`): called once the session is closed. */
  abort(): void;
}

export interface SessionKeeper {
  /** Hands the account's kept session to a scrape (it is not kept meanwhile), or null when none is held here. */
  take(accountId: string): KeptSession | null;
  /**
   * Keeps the account's session open after a successful scrape, calling `keepAlive` every
   * `keepAliveMs`. False when this process already holds its cap (the caller closes the session).
   */
  keep(accountId: string, kept: KeptSession, keepAliveMs: number): Promise<boolean>;
  /** Closes a session that is no longer kept and clears the account's claim on it. */
  release(accountId: string, kept: KeptSession, why: string): Promise<void>;
  /** Sessions held by this process. */
  size(): number;
  start(): void;
  /** Closes every kept session (shutdown). */
  stop(): Promise<void>;
}

export interface KeeperDeps {
  db: Db;
  transact: Transact;
  clock: Clock;
  log: Logger;
  owner: string;
  leaseMs: number;
  /** Open sessions this process keeps at most [OTPILOT_PERSISTENT_SESSIONS]. */
  cap: number;
  /** Longest a `keepAlive` or `close` call may take, ms. */
  callMs: number;
}

interface Held extends KeptSession {
  timer: NodeJS.Timeout;
  /** Out with a scrape: keepAlive skips it. */
  busy: boolean;
  /** A keepAlive round is under way (a slow bank must not stack them up). */
  tending: boolean;
}

/** Resolves with what `run` gives, or rejects when it has not answered within `ms`. */
function bounded<T>(run: () => Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([Promise.resolve().then(run), limit]).finally(() => clearTimeout(timer));
}

/**
 * The persistent bank sessions of one worker process. Each account's claim on its session is written
 * to the account (`live_session_*`) and renewed like a lease, so the claimer routes the account's
 * scrapes to this process, and a process that dies leaves a claim that simply lapses.
 */
export function makeSessionKeeper(deps: KeeperDeps): SessionKeeper {
  const { db, clock, log, owner } = deps;
  const held = new Map<string, Held>();
  let renewTimer: NodeJS.Timeout | null = null;
  /** Places taken by keeps still writing their claim (so the cap holds under concurrent keeps). */
  let reserved = 0;

  /** Writes (`since`) or clears (null: only our own) the account's claim on its open session. */
  const mark = (accountId: string, since: number | null) =>
    deps.transact(async (trx, uow) => {
      if (since === null)
        await trx
          .updateTable('accounts')
          .set({ live_session_owner: null, live_session_since: null, live_session_until: null })
          .where('id', '=', accountId)
          .where('live_session_owner', '=', owner)
          .execute();
      else
        await trx
          .updateTable('accounts')
          .set({
            live_session_owner: owner,
            live_session_since: since,
            live_session_until: clock() + leaseTerm(deps.leaseMs),
          })
          .where('id', '=', accountId)
          .execute();
      uow.touch(accountId);
    });

  const closeQuietly = async (kept: KeptSession) => {
    await bounded(() => kept.session.close(), deps.callMs).catch(() => {});
    kept.abort();
  };

  async function release(accountId: string, kept: KeptSession, why: string): Promise<void> {
    const entry = held.get(accountId);
    if (entry?.session === kept.session) {
      clearInterval(entry.timer);
      held.delete(accountId);
    }
    log.info({ account_id: accountId, reason: why }, 'persistent bank session ended');
    await closeQuietly(kept);
    await mark(accountId, null).catch((error: unknown) =>
      log.warn({ err: error, account_id: accountId }, 'clearing the live session failed'),
    );
  }

  /** One keepAlive round of one session: still wanted and still alive, or released. */
  async function tend(accountId: string, entry: Held): Promise<void> {
    if (entry.busy || held.get(accountId) !== entry) return;
    let config: { session_type: string; blocked_at: number | null; live_session_owner: string | null } | undefined;
    try {
      config = await db
        .selectFrom('account_config as c')
        .innerJoin('accounts as a', 'a.id', 'c.account_id')
        .select(['c.session_type', 'a.blocked_at', 'a.live_session_owner'])
        .where('c.account_id', '=', accountId)
        .executeTakeFirst();
    } catch {
      return; // the store is unreachable: look again next round
    }
    if (config?.session_type !== 'persistent' || config.blocked_at !== null)
      return release(accountId, entry, 'the account no longer keeps a session');
    // Another worker logged the account in meanwhile (our claim had lapsed): its session is the one kept.
    if (config.live_session_owner !== owner) return release(accountId, entry, 'another worker holds the session');
    if (!entry.session.keepAlive) return;
    let alive: boolean;
    try {
      alive = (await bounded(() => entry.session.keepAlive!(), deps.callMs)) === true;
    } catch {
      alive = false;
    }
    if (!alive && held.get(accountId) === entry && !entry.busy)
      await release(accountId, entry, 'keepAlive said the bank session is over');
  }

  /** Renews our claims, and clears claims whose holder stopped renewing them (a dead worker's). */
  async function renew(): Promise<void> {
    const now = clock();
    try {
      if (held.size > 0)
        await db
          .updateTable('accounts')
          .set({ live_session_until: now + leaseTerm(deps.leaseMs) })
          .where('live_session_owner', '=', owner)
          .where('id', 'in', [...held.keys()])
          .execute();
      await db
        .updateTable('accounts')
        .set({ live_session_owner: null, live_session_since: null, live_session_until: null })
        .where('live_session_owner', 'is not', null)
        .where('live_session_until', '<', now)
        .execute();
    } catch (error) {
      log.warn({ err: error }, 'renewing live sessions failed');
    }
  }

  return {
    take(accountId) {
      const entry = held.get(accountId);
      if (!entry || entry.busy) return null;
      entry.busy = true;
      return entry;
    },
    async keep(accountId, kept, keepAliveMs) {
      const before = held.get(accountId);
      if (before && before.session !== kept.session) await release(accountId, before, 'replaced by a new login');
      if (before?.session === kept.session) {
        before.busy = false;
        await mark(accountId, kept.since);
        return true;
      }
      if (held.size + reserved >= deps.cap) return false;
      // The claim first: if it cannot be written, nothing is held (the caller closes the session).
      reserved++;
      try {
        await mark(accountId, kept.since);
      } finally {
        reserved--;
      }
      const entry: Held = { ...kept, busy: false, tending: false, timer: undefined as unknown as NodeJS.Timeout };
      entry.timer = setInterval(() => {
        if (entry.tending) return;
        entry.tending = true;
        void tend(accountId, entry)
          .catch((error: unknown) => log.warn({ err: error, account_id: accountId }, 'keepAlive round failed'))
          .finally(() => {
            entry.tending = false;
          });
      }, keepAliveMs);
      entry.timer.unref();
      held.set(accountId, entry);
      return true;
    },
    release,
    size: () => held.size,
    start() {
      renewTimer = setInterval(() => void renew(), Math.max(50, Math.floor(deps.leaseMs / 4)));
    },
    async stop() {
      if (renewTimer) clearInterval(renewTimer);
      await Promise.allSettled([...held.entries()].map(([id, entry]) => release(id, entry, 'shutdown')));
    },
  };
}
