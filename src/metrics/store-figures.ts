import type { Clock } from '../core/time.js';
import type { Db } from '../store/db.js';

/** The window of the "recent" figures (logins, codes, hand-off times, failed deliveries), ms. */
export const RECENT_MS = 3_600_000;
/** At most this many hand-off times are read per scrape to compute the quantiles. */
const LATENCY_SAMPLE = 10_000;

/** A count with its labels. */
export interface Labelled {
  labels: Record<string, string>;
  value: number;
}

/** What the store says about the whole instance (the same from every process). */
export interface StoreFigures {
  /** Code requests waiting (`pending`), per bank and type (otp, approval). */
  pendingRequests: Labelled[];
  /** Prompt-to-code time of requests fulfilled in the window: quantiles 0.5, 0.9 and 1 (max), per bank, seconds. */
  handoffSeconds: Labelled[];
  /** Requests fulfilled in the window, per bank and code source (a `CodeVia`: `dashboard`, `api`, `sms_relay`, `totp`, `widget`, `connect_commit`). */
  codes: Labelled[];
  /** Logins ended in the window, per bank and outcome (`succeeded`, `cancelled`, or the failure category). */
  logins: Labelled[];
  /** Webhook deliveries now retrying (`failed`) and given up in the window (`dead`). */
  deliveries: Labelled[];
  /** Webhook endpoints disabled (by an operator or after failing too long), and endpoints failing now. */
  endpoints: Labelled[];
}

/** Adds up entries with the same labels. */
function summed(entries: Labelled[]): Labelled[] {
  const out = new Map<string, Labelled>();
  for (const entry of entries) {
    const key = JSON.stringify(entry.labels);
    const seen = out.get(key);
    if (seen) seen.value += entry.value;
    else out.set(key, { labels: entry.labels, value: entry.value });
  }
  return [...out.values()];
}

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

/**
 * Reads the figures operators watch straight from the store, when scraped: nothing in the engine or
 * the code hand-off is instrumented, and every process reports the same numbers. Each query is bound
 * to an index (0012_retention) and the recent window.
 */
export async function readStoreFigures(db: Db, clock: Clock): Promise<StoreFigures> {
  const since = clock() - RECENT_MS;
  const pending = await db
    .selectFrom('assistance_requests as r')
    .innerJoin('accounts as a', 'a.id', 'r.account_id')
    .select((eb) => ['a.bank_id', 'r.type', eb.fn.countAll<number>().as('n')])
    .where('r.state', '=', 'pending')
    .groupBy(['a.bank_id', 'r.type'])
    .execute();
  const fulfilled = await db
    .selectFrom('assistance_requests as r')
    .innerJoin('accounts as a', 'a.id', 'r.account_id')
    .select(['a.bank_id', 'r.resolution_via', 'r.created_at', 'r.resolved_at'])
    .where('r.state', '=', 'fulfilled')
    .where('r.resolved_at', '>=', since)
    .orderBy('r.resolved_at', 'desc')
    .limit(LATENCY_SAMPLE)
    .execute();
  const logins = await db
    .selectFrom('sessions as s')
    .innerJoin('accounts as a', 'a.id', 's.account_id')
    .select((eb) => ['a.bank_id', 's.state', 's.failure_category', eb.fn.countAll<number>().as('n')])
    .where('s.finished_at', '>=', since)
    .groupBy(['a.bank_id', 's.state', 's.failure_category'])
    .execute();
  const deliveries = await db
    .selectFrom('deliveries')
    .select((eb) => ['status', eb.fn.countAll<number>().as('n')])
    .where((eb) =>
      eb.or([eb('status', '=', 'failed'), eb.and([eb('status', '=', 'dead'), eb('updated_at', '>=', since)])]),
    )
    .groupBy('status')
    .execute();
  const endpoints = await db
    .selectFrom('webhook_endpoints')
    .select((eb) => [
      eb.fn.sum<number>(eb.case().when('enabled', '=', 0).then(1).else(0).end()).as('disabled'),
      eb.fn
        .sum<number>(
          eb
            .case()
            .when(eb.and([eb('enabled', '=', 1), eb('failing_since', 'is not', null)]))
            .then(1)
            .else(0)
            .end(),
        )
        .as('failing'),
    ])
    .executeTakeFirst();

  const byBank = new Map<string, number[]>();
  const codes: Labelled[] = [];
  for (const row of fulfilled) {
    const seconds = ((row.resolved_at ?? row.created_at) - row.created_at) / 1000;
    const list = byBank.get(row.bank_id) ?? [];
    list.push(seconds);
    byBank.set(row.bank_id, list);
    codes.push({ labels: { bank: row.bank_id, source: row.resolution_via ?? 'unknown' }, value: 1 });
  }
  const handoffSeconds: Labelled[] = [];
  for (const [bank, list] of byBank) {
    list.sort((a, b) => a - b);
    for (const q of [0.5, 0.9, 1])
      handoffSeconds.push({ labels: { bank, quantile: String(q) }, value: quantile(list, q) });
  }
  return {
    pendingRequests: pending.map((r) => ({ labels: { bank: r.bank_id, type: r.type }, value: Number(r.n) })),
    handoffSeconds,
    codes: summed(codes),
    logins: summed(
      logins.map((r) => ({
        labels: { bank: r.bank_id, outcome: r.state === 'failed' ? (r.failure_category ?? 'unknown') : r.state },
        value: Number(r.n),
      })),
    ),
    deliveries: deliveries.map((r) => ({ labels: { status: r.status }, value: Number(r.n) })),
    endpoints: [
      { labels: { state: 'disabled' }, value: Number(endpoints?.disabled ?? 0) },
      { labels: { state: 'failing' }, value: Number(endpoints?.failing ?? 0) },
    ],
  };
}
