import { sql } from 'kysely';
import type { Clock } from '../core/time.js';
import { claimSessions } from '../sessions/transitions.js';
import type { Db, Dialect } from '../store/db.js';
import { QUEUED, RUNNING_STATES } from '../store/literals.js';
import type { SessionsTable } from '../store/schema.js';

export interface ClaimOptions {
  db: Db;
  dialect: Dialect;
  clock: Clock;
  /** Lease owner id of this process. */
  owner: string;
  /** A claimed session's lease runs this long before its first heartbeat, ms. */
  leaseMs: number;
  /** Bank id → most logins running against it at once across every worker (absent: no limit). */
  bankLimits: ReadonlyMap<string, number>;
  /** Bank id → least time between two claimed logins to it across every worker, ms (absent: none). */
  bankSpacing?: ReadonlyMap<string, number>;
}

/** How far ahead a lease is written (claim and heartbeat): 70 % of the lease period, ms. */
export function leaseTerm(leaseMs: number): number {
  return Math.floor(leaseMs * 0.7);
}

/** Candidates looked at per claim, as a multiple of what is wanted (some are skipped: locked or capped). */
const SCAN_FACTOR = 4;

/**
 * Claims up to `limit` queued sessions for this worker, in one transaction:
 *
 * - **fair share**: each organization's queue is taken in turn, ranked by its place in its own queue
 *   plus how many sessions the organization already runs, so a big organization cannot starve a small one;
 * - **bank caps**: a bank with a limit gets at most `limit − running` new logins, counted under a
 *   per-bank transaction lock (PostgreSQL) so two workers can never both take the last slot;
 * - **bank spacing**: a bank with a spacing gets one new login per interval (its `last_login_at`,
 *   moved under the same lock);
 * - **kept sessions**: an account whose open bank session another live worker keeps
 *   (`session_type: persistent`) is left to that worker, so its scrape reuses the session;
 * - **no double run**: on PostgreSQL rows are locked `FOR UPDATE SKIP LOCKED` (another worker's claim
 *   skips them instead of waiting), and the update itself re-checks `state = 'queued'`.
 */
export function makeClaimer(options: ClaimOptions): (limit: number) => Promise<SessionsTable[]> {
  const { db, dialect, owner, leaseMs, bankLimits } = options;
  const spacing = options.bankSpacing ?? new Map<string, number>();
  const capped = [...bankLimits.keys()];
  const spaced = [...spacing.keys()];

  return async (limit) => {
    // Look first: an empty claim then costs one indexed read instead of a transaction.
    const any = await db.selectFrom('sessions').select('id').where('state', '=', QUEUED).limit(1).executeTakeFirst();
    if (!any) return [];
    return db.transaction().execute(async (trx) => {
      const full = new Set<string>();
      if (capped.length > 0) {
        const running = await trx
          .selectFrom('sessions as s')
          .innerJoin('accounts as a', 'a.id', 's.account_id')
          .select(['a.bank_id', (eb) => eb.fn.countAll<number>().as('n')])
          .where('s.state', 'in', RUNNING_STATES)
          .where('a.bank_id', 'in', capped)
          .groupBy('a.bank_id')
          .execute();
        for (const row of running)
          if (Number(row.n) >= (bankLimits.get(row.bank_id) ?? Infinity)) full.add(row.bank_id);
      }
      const now = options.clock();
      if (spaced.length > 0) {
        const recent = await trx
          .selectFrom('banks')
          .select(['id', 'last_login_at'])
          .where('id', 'in', spaced)
          .execute();
        for (const bank of recent)
          if (bank.last_login_at !== null && now - bank.last_login_at < spacing.get(bank.id)!) full.add(bank.id);
      }
      const excluded = [...full];
      const { rows: candidates } = await sql<{ id: string; bank_id: string }>`
        select q.id, q.bank_id from (
          select s.id, s.org_id, s.queued_at, a.bank_id,
                 row_number() over (partition by s.org_id order by s.queued_at, s.id) as rn
          from sessions s join accounts a on a.id = s.account_id
          where s.state = ${QUEUED}
          and (a.live_session_owner is null or a.live_session_owner = ${owner} or a.live_session_until < ${options.clock()})
          ${excluded.length > 0 ? sql`and a.bank_id not in (${sql.join(excluded)})` : sql``}
        ) q
        left join (
          select org_id, count(*) as n from sessions where state in (${sql.join(RUNNING_STATES)}) group by org_id
        ) r on r.org_id = q.org_id
        where q.rn <= ${limit * SCAN_FACTOR}
        order by q.rn + coalesce(r.n, 0), q.queued_at, q.id
        limit ${limit * SCAN_FACTOR}
      `.execute(trx);
      if (candidates.length === 0) return [];

      let ids = candidates.map((c) => c.id);
      if (dialect === 'postgres') {
        const locked = await sql<{ id: string }>`
          select id from sessions where id in (${sql.join(ids)}) and state = ${QUEUED} for update skip locked
        `.execute(trx);
        const mine = new Set(locked.rows.map((row) => row.id));
        ids = ids.filter((id) => mine.has(id));
      }

      const bankOf = new Map(candidates.map((c) => [c.id, c.bank_id]));
      const room = new Map<string, number>();
      for (const bankId of new Set(ids.map((id) => bankOf.get(id)!))) {
        const cap = bankLimits.get(bankId);
        const gap = spacing.get(bankId);
        if (cap === undefined && gap === undefined) continue;
        if (dialect === 'postgres') {
          // Held to the commit: the count below and our claim are one step for every other worker.
          const { rows } = await sql<{ ok: boolean }>`
            select pg_try_advisory_xact_lock(hashtext('otpilot:bank:' || current_schema() || ':' || ${bankId})) as ok
          `.execute(trx);
          if (rows[0]?.ok !== true) {
            room.set(bankId, 0); // another worker is claiming for this bank right now; next round
            continue;
          }
        }
        let left = Number.POSITIVE_INFINITY;
        if (cap !== undefined) {
          const row = await trx
            .selectFrom('sessions as s')
            .innerJoin('accounts as a', 'a.id', 's.account_id')
            .select((eb) => eb.fn.countAll<number>().as('n'))
            .where('s.state', 'in', RUNNING_STATES)
            .where('a.bank_id', '=', bankId)
            .executeTakeFirstOrThrow();
          left = Math.max(0, cap - Number(row.n));
        }
        if (gap !== undefined) {
          // One login per spacing interval: re-read under the lock, then take the slot by moving the mark.
          const bank = await trx
            .selectFrom('banks')
            .select('last_login_at')
            .where('id', '=', bankId)
            .executeTakeFirst();
          const free = bank?.last_login_at == null || now - bank.last_login_at >= gap;
          left = free ? Math.min(left, 1) : 0;
        }
        room.set(bankId, left);
      }
      const chosen: string[] = [];
      for (const id of ids) {
        if (chosen.length >= limit) break;
        const bankId = bankOf.get(id)!;
        const left = room.get(bankId);
        if (left === undefined) {
          chosen.push(id);
        } else if (left > 0) {
          room.set(bankId, left - 1);
          chosen.push(id);
        }
      }
      if (chosen.length === 0) return [];
      const spacedChosen = new Set(chosen.map((id) => bankOf.get(id)!).filter((bankId) => spacing.has(bankId)));
      if (spacedChosen.size > 0)
        await trx
          .updateTable('banks')
          .set({ last_login_at: now })
          .where('id', 'in', [...spacedChosen])
          .execute();
      return claimSessions(trx, chosen, { owner, until: now + leaseTerm(leaseMs), now });
    });
  };
}
