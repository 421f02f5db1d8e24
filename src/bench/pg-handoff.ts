import { monitorEventLoopDelay } from 'node:perf_hooks';
import { loadConfig } from '../config.js';
import { type RunningServer, startServer } from '../server.js';
import type { BenchAccount } from './client.js';
import {
  type Context,
  createAccounts,
  driveLogins,
  HANDOFF_LANES,
  HANDOFF_LOGINS,
  log,
  ms,
  scaled,
} from './pg-shared.js';
import { absoluteNow, round } from './stats.js';
import { timingConnectors } from './timing.js';

/** Logins of the one-lane phase (one login at a time: the hand-off without contention). */
const ONE_LANE_LOGINS = scaled(100);

/**
 * `pg_handoff_ms`: a code posted to an API process reaching the connector in a worker, measured from
 * when the client sent it (what a person feels), one login at a time and `BENCH_LANES` at a time.
 * The worker runs inside this process (`startServer({ role: 'worker' })`) so its "connector holds
 * the code" time and the clients' times are on one clock; the clients run on a worker thread.
 */
export async function benchHandoff(ctx: Context) {
  const holds = new Map<string, number[]>();
  const prompts = new Map<string, number[]>();
  const loaded = loadConfig({ ...ctx.env, LOG_LEVEL: 'silent' });
  if (!loaded.ok) throw new Error(loaded.errors.join('; '));
  let worker: RunningServer | null = await startServer({
    config: loaded.config,
    role: 'worker',
    printBootstrap: () => {},
    connectors: timingConnectors(holds, prompts),
  });
  // When each `asr:<request id>` wake-up (a code was stored, sent by the API process with NOTIFY)
  // reached this worker: splits the hand-off into the wake-up and what the worker does after it.
  const wakes = new Map<string, number>();
  const unsubscribe = worker.bus.subscribeAll((topic) => {
    if (topic.startsWith('asr:') && !wakes.has(topic)) wakes.set(topic.slice(4), absoluteNow());
  });
  const loop = monitorEventLoopDelay({ resolution: 1 });

  /** `lanes` accounts logging in `perLane` times each, at once; the figures of those logins. */
  async function phase(accounts: BenchAccount[], perLane: number) {
    const task = { apiUrl: ctx.api.url, bankUrl: ctx.bank.url, key: ctx.key, accounts };
    log(
      `pg hand-off: ${perLane * accounts.length} assisted logins (${accounts.length} at a time), API process → worker in this process`,
    );
    loop.reset();
    loop.enable();
    const result = await driveLogins({ ...task, perAccount: perLane });
    loop.disable();
    ctx.procs.assertAlive();
    // The requests of each account in login order (the warm-up's first), to match the wake-ups.
    const requests = await ctx.db.query<{ id: string; account_id: string }>(
      'select id, account_id from assistance_requests where account_id = any($1) order by created_at, id',
      [accounts.map((a) => a.id)],
    );
    const requestIds = new Map<string, string[]>();
    for (const row of requests.rows)
      requestIds.set(row.account_id, [...(requestIds.get(row.account_id) ?? []), row.id]);
    const accountOf = new Map(accounts.map((a) => [a.username, a.id]));
    const fromSend: number[] = [];
    const afterResponse: number[] = [];
    const wakeAfterSend: number[] = [];
    const wakeToHold: number[] = [];
    for (const s of result.submissions) {
      const held = holds.get(s.username)?.[s.index + 1];
      if (held === undefined) throw new Error(`no hold recorded for ${s.username} #${s.index}`);
      fromSend.push(held - s.sentAt);
      // As on SQLite: 0 when the connector already held the code before the answer reached the client.
      afterResponse.push(Math.max(0, held - s.answeredAt));
      const requestId = requestIds.get(accountOf.get(s.username)!)?.[s.index + 1];
      const woke = requestId === undefined ? undefined : wakes.get(requestId);
      if (woke !== undefined) {
        wakeAfterSend.push(woke - s.sentAt);
        wakeToHold.push(held - woke);
      }
    }
    return {
      from_send: ms(fromSend),
      detail: {
        lanes: accounts.length,
        samples: fromSend.length,
        after_response_ms: ms(afterResponse),
        wake_after_send_ms: ms(wakeAfterSend),
        wake_to_hold_ms: ms(wakeToHold),
        woken_samples: wakeAfterSend.length,
        worker_loop_delay_ms: { p50: round(loop.percentile(50) / 1e6), p99: round(loop.percentile(99) / 1e6) },
        logins_per_s: round(result.submissions.length / result.seconds, 1),
      },
    };
  }

  try {
    const lanes = Math.min(HANDOFF_LANES, HANDOFF_LOGINS);
    const accounts = await createAccounts(
      ctx.api.url,
      ctx.key,
      Array.from({ length: lanes + 1 }, (_, i) => `otp+${ctx.tag}h${i}`),
      {},
    );
    // A first login reads 90 days of history: a warm-up round, not measured (as for logins_per_s).
    log(`pg hand-off: warm-up, one assisted login on each of ${accounts.length} accounts`);
    await driveLogins({ apiUrl: ctx.api.url, bankUrl: ctx.bank.url, key: ctx.key, accounts, perAccount: 1 });
    const one = await phase(accounts.slice(0, 1), ONE_LANE_LOGINS);
    const many = await phase(accounts.slice(1), Math.ceil(HANDOFF_LOGINS / lanes));
    const closing = worker;
    worker = null;
    unsubscribe();
    await closing.close();
    return {
      pg_handoff_ms: many.from_send,
      pg_handoff_one_lane_ms: one.from_send,
      pg_handoff_samples: many.detail.samples,
      pg_handoff_detail: { ...many.detail, one_lane: one.detail },
    };
  } finally {
    loop.disable();
    unsubscribe();
    await worker?.close();
  }
}
