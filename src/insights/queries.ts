import type { Db } from '../store/db.js';

/** One day, `YYYY-MM-DD` in UTC. */
const DAY_MS = 86_400_000;
export const dayOf = (ms: number) => new Date(ms).toISOString().slice(0, 10);

/** The last `days` calendar days (UTC) up to the one holding `now`, oldest first. */
export function lastDays(now: number, days: number): string[] {
  return Array.from({ length: days }, (_, i) => dayOf(now - (days - 1 - i) * DAY_MS));
}

/** A decimal string in ten-thousandths, so sums stay exact (amounts have at most four decimals). */
const SCALE = 4;
function toUnits(decimal: string): bigint {
  const negative = decimal.trim().startsWith('-');
  const [whole = '0', fraction = ''] = decimal.trim().replace(/^[-+]/, '').split('.');
  const units = BigInt(whole || '0') * 10n ** BigInt(SCALE) + BigInt(fraction.padEnd(SCALE, '0').slice(0, SCALE));
  return negative ? -units : units;
}
function fromUnits(units: bigint): string {
  const negative = units < 0n;
  const abs = negative ? -units : units;
  const base = 10n ** BigInt(SCALE);
  const fraction = String(abs % base)
    .padStart(SCALE, '0')
    .replace(/0{1,2}$/, '');
  return `${negative ? '-' : ''}${abs / base}.${fraction.padEnd(2, '0')}`;
}

/** One run of a login, as the health strip draws it. */
export interface RunHealth {
  session_id: string;
  /** When it started (or was queued, if it never started). */
  at: string;
  state: 'queued' | 'running' | 'awaiting_assistance' | 'succeeded' | 'failed' | 'cancelled';
  failure_category: string | null;
  /** How long it waited for codes or approvals, ms; null when the bank asked for none. */
  waited_ms: number | null;
}

/** A day of one account's logins. */
export interface DayHealth {
  date: string;
  succeeded: number;
  failed: number;
  /** Runs that waited for a code or an approval (whatever their outcome). */
  waited: number;
}

/** Runs of the given accounts since `since` (epoch ms), newest first, at most `limit`. */
export async function runsSince(
  db: Db,
  orgId: string,
  accountIds: readonly string[] | null,
  since: number,
  now: number,
  limit: number,
): Promise<(RunHealth & { account_id: string })[]> {
  let q = db
    .selectFrom('sessions')
    .select(['id', 'account_id', 'state', 'failure_category', 'queued_at', 'started_at'])
    .where('org_id', '=', orgId)
    .where('queued_at', '>=', since);
  if (accountIds) q = q.where('account_id', 'in', accountIds.length > 0 ? [...accountIds] : ['']);
  const sessions = await q.orderBy('queued_at', 'desc').limit(limit).execute();
  if (sessions.length === 0) return [];
  let w = db
    .selectFrom('assistance_requests')
    .select(['session_id', 'created_at', 'resolved_at'])
    .where('org_id', '=', orgId)
    .where('created_at', '>=', since);
  if (accountIds) w = w.where('account_id', 'in', accountIds.length > 0 ? [...accountIds] : ['']);
  const waits = await w.execute();
  const waited = new Map<string, number>();
  for (const w of waits)
    waited.set(w.session_id, (waited.get(w.session_id) ?? 0) + (w.resolved_at ?? now) - w.created_at);
  return sessions.map((s) => ({
    session_id: s.id,
    account_id: s.account_id,
    at: new Date(s.started_at ?? s.queued_at).toISOString(),
    state: s.state,
    failure_category: s.failure_category,
    waited_ms: waited.get(s.id) ?? null,
  }));
}

/** Runs folded into one entry per day, every day of `days` present (empty days are zeros). */
export function perDay(runs: readonly RunHealth[], days: readonly string[]): DayHealth[] {
  const byDay = new Map(days.map((date) => [date, { date, succeeded: 0, failed: 0, waited: 0 }]));
  for (const run of runs) {
    const day = byDay.get(run.at.slice(0, 10));
    if (!day) continue;
    if (run.state === 'succeeded') day.succeeded++;
    if (run.state === 'failed') day.failed++;
    if (run.waited_ms !== null) day.waited++;
  }
  return [...byDay.values()];
}

/** A bank account with its balance at the end of each day (rebuilt from today's balance and the movements since). */
export interface BalanceHistory {
  id: string;
  name: string;
  iban: string | null;
  currency: string;
  type: string;
  balance_current: string | null;
  balance_available: string | null;
  balance_as_of: string | null;
  /** Oldest first; empty when the bank gave no balance. */
  history: { date: string; balance: string }[];
}

export async function balanceHistory(db: Db, accountId: string, days: readonly string[]): Promise<BalanceHistory[]> {
  const banks = await db
    .selectFrom('bank_accounts')
    .selectAll()
    .where('account_id', '=', accountId)
    .orderBy('name')
    .execute();
  const first = days[0] ?? dayOf(Date.now());
  const movements = await db
    .selectFrom('movements')
    .select(['bank_account_id', 'booked_at', 'amount'])
    .where('account_id', '=', accountId)
    .where('booked_at', '>', first)
    .execute();
  return banks.map((bank) => {
    const view = {
      id: bank.id,
      name: bank.name,
      iban: bank.iban,
      currency: bank.currency,
      type: bank.type,
      balance_current: bank.balance_current,
      balance_available: bank.balance_available,
      balance_as_of: bank.balance_as_of,
    };
    if (bank.balance_current === null) return { ...view, history: [] };
    // Walk back from today: the balance at the end of a day is today's minus what was booked after it.
    const mine = movements.filter((m) => m.bank_account_id === bank.id);
    let balance = toUnits(bank.balance_current);
    const history: { date: string; balance: string }[] = [];
    for (let i = days.length - 1; i >= 0; i--) {
      const day = days[i]!;
      history.push({ date: day, balance: fromUnits(balance) });
      for (const m of mine) if (m.booked_at.slice(0, 10) === day) balance -= toUnits(m.amount);
    }
    return { ...view, history: history.reverse() };
  });
}

/** How an assistance request ended, in words an operator uses. */
export type Verdict = 'pending' | 'accepted' | 'rejected' | 'expired' | 'withdrawn';

export function verdictOf(state: string, reason: string | null): Verdict {
  switch (state) {
    case 'pending':
      return 'pending';
    case 'fulfilled':
      return 'accepted';
    case 'expired':
      return 'expired';
    default:
      return reason === 'attempts_exhausted' ? 'rejected' : 'withdrawn';
  }
}

/** Who answered a request. */
export interface Answerer {
  type: 'user' | 'api_key' | 'app_token' | 'system';
  id: string | null;
  /** The user's email, the key's or app token's name; null for the system. */
  label: string | null;
}

export interface CodeRow {
  id: string;
  account_id: string;
  type: 'otp' | 'approval';
  /** Where the code came from (dashboard, api, sms_relay, totp, widget, connect_commit), `bank_app` for approvals; null while none came. */
  source: string | null;
  verdict: Verdict;
  created_at: string;
  resolved_at: string | null;
  /** From the prompt to the accepted code (or approval), ms; null while none came. */
  time_to_code_ms: number | null;
  answered_by: Answerer | null;
}

/** The assistance requests of the organization (newest first) with who answered each, from the audit log. */
export async function codeRows(
  db: Db,
  orgId: string,
  options: { accountIds: readonly string[] | null; since?: number; before?: string | null; limit: number },
): Promise<CodeRow[]> {
  let q = db.selectFrom('assistance_requests').selectAll().where('org_id', '=', orgId);
  if (options.accountIds)
    q = q.where('account_id', 'in', options.accountIds.length > 0 ? [...options.accountIds] : ['']);
  if (options.since !== undefined) q = q.where('created_at', '>=', options.since);
  if (options.before) q = q.where('id', '<', options.before);
  const rows = await q.orderBy('id', 'desc').limit(options.limit).execute();
  if (rows.length === 0) return [];
  const submissions = await db
    .selectFrom('audit_log')
    .select(['target_id', 'actor_type', 'actor_id', 'created_at'])
    .where('org_id', '=', orgId)
    .where('action', '=', 'otp.submit')
    .where('outcome', '=', 'submitted')
    .where(
      'target_id',
      'in',
      rows.map((r) => r.id),
    )
    .orderBy('created_at')
    .execute();
  // The last code submitted for a request is the one the bank judged last: the accepted one when it was accepted.
  const last = new Map(submissions.map((s) => [s.target_id, s]));
  const labels = await actorLabels(db, orgId, [...last.values()]);
  return rows.map((r) => {
    const answered = r.state === 'fulfilled' ? last.get(r.id) : undefined;
    const source =
      r.resolution_via ?? r.code_via ?? (r.type === 'approval' && r.state === 'fulfilled' ? 'bank_app' : null);
    const codeAt = answered?.created_at ?? (r.state === 'fulfilled' ? r.resolved_at : null);
    return {
      id: r.id,
      account_id: r.account_id,
      type: r.type,
      source,
      verdict: verdictOf(r.state, r.resolution_reason),
      created_at: new Date(r.created_at).toISOString(),
      resolved_at: r.resolved_at === null ? null : new Date(r.resolved_at).toISOString(),
      time_to_code_ms: codeAt === null || codeAt === undefined ? null : Math.max(0, codeAt - r.created_at),
      answered_by: answered
        ? {
            type: answered.actor_type,
            id: answered.actor_id,
            label: labels.get(`${answered.actor_type}:${answered.actor_id}`) ?? null,
          }
        : null,
    };
  });
}

async function actorLabels(
  db: Db,
  orgId: string,
  actors: { actor_type: string; actor_id: string | null }[],
): Promise<Map<string, string>> {
  const ids = (type: string) => [
    ...new Set(actors.filter((a) => a.actor_type === type && a.actor_id).map((a) => a.actor_id!)),
  ];
  const labels = new Map<string, string>();
  const users = ids('user');
  if (users.length > 0) {
    for (const u of await db
      .selectFrom('users')
      .select(['id', 'email'])
      .where('org_id', '=', orgId)
      .where('id', 'in', users)
      .execute())
      labels.set(`user:${u.id}`, u.email);
  }
  const keys = ids('api_key');
  if (keys.length > 0) {
    for (const k of await db
      .selectFrom('api_keys')
      .select(['id', 'name'])
      .where('org_id', '=', orgId)
      .where('id', 'in', keys)
      .execute())
      labels.set(`api_key:${k.id}`, k.name);
  }
  const tokens = ids('app_token');
  if (tokens.length > 0) {
    for (const a of await db
      .selectFrom('app_tokens')
      .select(['id', 'name'])
      .where('org_id', '=', orgId)
      .where('id', 'in', tokens)
      .execute())
      labels.set(`app_token:${a.id}`, a.name);
  }
  return labels;
}

/** The middle value (the mean of the two middle ones for an even count); null for none. */
export function median(values: readonly number[]): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : Math.round((sorted[mid - 1]! + sorted[mid]!) / 2);
}

export interface MedianGroup {
  key: string;
  label: string | null;
  /** Median time from prompt to code, ms. */
  median_ms: number;
  count: number;
}

/** Median time-to-code grouped by `keyOf` (null: the row does not count), largest median first. */
export function mediansBy(
  rows: readonly CodeRow[],
  keyOf: (row: CodeRow) => { key: string; label: string | null } | null,
): MedianGroup[] {
  const groups = new Map<string, { label: string | null; times: number[] }>();
  for (const row of rows) {
    if (row.time_to_code_ms === null) continue;
    const key = keyOf(row);
    if (!key) continue;
    const group = groups.get(key.key) ?? { label: key.label, times: [] };
    group.times.push(row.time_to_code_ms);
    groups.set(key.key, group);
  }
  return [...groups.entries()]
    .map(([key, g]) => ({ key, label: g.label, median_ms: median(g.times)!, count: g.times.length }))
    .sort((a, b) => b.median_ms - a.median_ms);
}
