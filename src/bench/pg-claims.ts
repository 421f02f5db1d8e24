import { channelFor } from '../events/pg-bus.js';
import { CLAIM_ACCOUNTS, CLAIM_WORKERS, type Context, createAccounts, log, until } from './pg-shared.js';
import { bankStats, metric, READY } from './processes.js';

/** `pg_claims_per_s`: four worker processes taking a backlog of queued logins that appears at once. */
export async function benchClaims(ctx: Context, workerEnv: NodeJS.ProcessEnv) {
  log(`pg claims: creating ${CLAIM_ACCOUNTS} scheduled accounts`);
  const accounts = await createAccounts(
    ctx.api.url,
    ctx.key,
    // `slow` users: every bank call takes BANK_SLOW_MS, as real bank logins take seconds. Claimed logins
    // then wait on the bank (timers, no CPU) instead of crowding out the claiming being measured.
    Array.from({ length: CLAIM_ACCOUNTS }, (_, i) => `slow+${ctx.tag}c${i}`),
    { schedule: 'every 1h' },
  );
  const ids = accounts.map((a) => a.id);
  log(`pg claims: starting ${CLAIM_WORKERS} worker processes`);
  const workers = await Promise.all(
    Array.from({ length: CLAIM_WORKERS }, (_, i) =>
      ctx.procs.launch(`worker ${i + 1}`, ['start', '--role', 'worker'], workerEnv, READY),
    ),
  );
  // One of them holds the scheduler lock before anything falls due.
  await until(
    ctx.procs,
    'scheduler leader',
    async () => (await Promise.all(workers.map((w) => metric(w, 'otpilot_scheduler_leader')))).reduce((a, b) => a + b),
    (leaders) => leaders === 1,
    15_000,
  );
  const claimedBefore = await Promise.all(workers.map((w) => metric(w, 'otpilot_sessions_claimed_total')));
  const bankBefore = await bankStats(ctx.bank);

  // The backlog appears at once (one insert, as a big scheduler tick or an outage's end would leave
  // it), so the figure is the claiming, not the scheduler's queueing pace.
  log(`pg claims: ${CLAIM_ACCOUNTS} sessions queued at once, ${CLAIM_WORKERS} workers claiming`);
  const dueAt = Date.now();
  await ctx.db.query(
    `insert into sessions (id, org_id, account_id, state, trigger, stages, movements_new, queued_at)
     select 'ses_bench_' || a.id, a.org_id, a.id, 'queued', 'schedule', '[]', 0, $1
     from accounts a where a.id = any($2)`,
    [dueAt, ids],
  );
  // Wake the workers the way an API process would (they also poll, so this only saves the wait).
  const schema = (await ctx.db.query<{ s: string }>('select current_schema() as s')).rows[0]!.s;
  await ctx.db.query('select pg_notify($1, $2)', [
    channelFor(schema),
    JSON.stringify({ o: 'bench', t: ['work'], e: [] }),
  ]);
  const started = await until(
    ctx.procs,
    'every session started',
    async () =>
      (
        await ctx.db.query<{
          started: number;
          first_started: number | null;
          last_started: number | null;
          first_queued: number | null;
          last_queued: number | null;
        }>(
          // Each account's first session: a run repeated after a failure does not count as a claim here.
          `with firsts as (
             select account_id, min(started_at) as started, min(queued_at) as queued
             from sessions where account_id = any($1) group by account_id
           )
           select count(started)::int as started, min(started) as first_started, max(started) as last_started,
                  min(queued) as first_queued, max(queued) as last_queued
           from firsts`,
          [ids],
        )
      ).rows[0]!,
    (row) => row.started >= CLAIM_ACCOUNTS,
    Math.max(60_000, CLAIM_ACCOUNTS * 50),
    100,
  );
  const firstStarted = Number(started.first_started);
  const lastStarted = Number(started.last_started);

  log('pg claims: waiting for every login to end');
  await until(
    ctx.procs,
    'every session ended',
    async () =>
      (
        await ctx.db.query<{ accounts: number; active: number }>(
          `select count(distinct account_id)::int as accounts,
                  (count(*) filter (where state not in ('succeeded', 'failed', 'cancelled')))::int as active
           from sessions where account_id = any($1)`,
          [ids],
        )
      ).rows[0]!,
    (row) => row.accounts >= CLAIM_ACCOUNTS && row.active === 0,
    Math.max(120_000, CLAIM_ACCOUNTS * 200),
    250,
  );
  const runs = await ctx.db.query<{ account_id: string; runs: number; succeeded: number }>(
    `select account_id, count(*)::int as runs, (count(*) filter (where state = 'succeeded'))::int as succeeded
     from sessions where account_id = any($1) group by account_id`,
    [ids],
  );
  const twice = runs.rows.filter((r) => r.runs > 1);
  const failed = runs.rows.reduce((n, r) => n + (r.runs - r.succeeded), 0);
  const bankLogins = (await bankStats(ctx.bank)).logins - bankBefore.logins;
  const claimedAfter = await Promise.all(workers.map((w) => metric(w, 'otpilot_sessions_claimed_total')));
  const byWorker = claimedAfter.map((n, i) => n - claimedBefore[i]!);
  // Two sessions of one account whose [started, finished] overlap: the same bank login run twice at once.
  const overlapping = (
    await ctx.db.query<{ n: number }>(
      `select count(*)::int as n from sessions a join sessions b on a.account_id = b.account_id and a.id < b.id
       where a.account_id = any($1) and a.started_at is not null and b.started_at is not null
         and a.started_at < coalesce(b.finished_at, 9e15) and b.started_at < coalesce(a.finished_at, 9e15)`,
      [ids],
    )
  ).rows[0]!.n;
  if (twice.length > 0) {
    const story = await ctx.db.query<{ story: string; n: number }>(
      `select story, count(*)::int as n from (
         select account_id, string_agg(state || coalesce(' (' || failure_category || ')', ''), ' → ' order by queued_at, id) as story
         from sessions where account_id = any($1) group by account_id having count(*) > 1
       ) s group by story order by n desc limit 3`,
      [ids],
    );
    log(
      `WARNING: ${twice.length} accounts had more than one session, ${overlapping} pairs overlapping in time (${story.rows
        .map((r) => `${r.n}× ${r.story}`)
        .join('; ')})`,
    );
  } else if (overlapping > 0) log(`WARNING: ${overlapping} session pairs of one account overlap in time`);
  if (runs.rows.length !== CLAIM_ACCOUNTS)
    log(`WARNING: ${CLAIM_ACCOUNTS - runs.rows.length} of ${CLAIM_ACCOUNTS} due accounts got no session`);
  if (bankLogins !== CLAIM_ACCOUNTS)
    log(`WARNING: the bank saw ${bankLogins} logins for ${CLAIM_ACCOUNTS} due accounts`);
  if (byWorker.reduce((a, b) => a + b, 0) !== CLAIM_ACCOUNTS)
    log(`WARNING: the workers report ${byWorker.join('+')} claims for ${CLAIM_ACCOUNTS} sessions`);
  if (failed > 0) {
    const why = await ctx.db.query<{ state: string; category: string | null; message: string | null; n: number }>(
      `select state, failure_category as category, left(failure_message, 200) as message, count(*)::int as n
       from sessions where account_id = any($1) and state <> 'succeeded' group by 1, 2, 3 order by n desc limit 5`,
      [ids],
    );
    log(
      `WARNING: ${failed} of the scheduled logins did not succeed: ${why.rows
        .map((r) => `${r.n}× ${r.state} ${r.category ?? ''} ${r.message ?? ''}`)
        .join('; ')}`,
    );
  }
  const spanS = Math.max(lastStarted - firstStarted, 1) / 1000;
  return {
    pg_claims_per_s: Math.round(CLAIM_ACCOUNTS / spanS),
    pg_claims_from_due_per_s: Math.round(CLAIM_ACCOUNTS / (Math.max(lastStarted - dueAt, 1) / 1000)),
    pg_claims: {
      sessions: CLAIM_ACCOUNTS,
      workers: CLAIM_WORKERS,
      first_to_last_started_ms: lastStarted - firstStarted,
      due_to_first_started_ms: firstStarted - dueAt,
      due_to_last_started_ms: lastStarted - dueAt,
      first_to_last_queued_ms: Number(started.last_queued) - Number(started.first_queued),
      by_worker: byWorker,
      ran_twice: twice.length,
      overlapping,
      failed,
    },
  };
}

/** Runs the PostgreSQL benchmarks against the server at `databaseUrl`; returns their `pg_*` keys. */
