import type { RunningServer } from '../server.js';
import { drive, startReceiver } from './children.js';
import { type BenchAccount, createAccounts } from './client.js';
import { meterServer, perLogin } from './meter.js';
import { percentile, round } from './stats.js';

/**
 * The SQLite login figures, as a user feels them: the server under test runs in this process, the
 * sandbox bank in its own (`otpilot sandbox-bank`), the clients and the webhook receiver in theirs.
 */
export interface LoginSizes {
  /** Logins one at a time on one account (after a warm-up login). */
  singleLogins: number;
  /** Logins over `lanes` accounts side by side (after a warm-up login each). */
  laneLogins: number;
  lanes: number;
  /** Accounts logging in at once for the ceiling, and rounds after the warm-up one. */
  throughputAccounts: number;
  throughputRounds: number;
}

const ms = (values: number[]) => ({ p50: round(percentile(values, 50)), p99: round(percentile(values, 99)) });

export async function benchLogins(
  server: RunningServer,
  key: string,
  bankUrl: string,
  holds: Map<string, number[]>,
  prompts: Map<string, number[]>,
  sizes: LoginSizes,
  log: (message: string) => void,
) {
  const logins = (accounts: BenchAccount[], perAccount: number) =>
    drive({ kind: 'logins', url: server.url, key, bankUrl, accounts, perAccount }).then((result) => {
      if (result.kind !== 'logins') throw new Error('unexpected result');
      return result;
    });

  /** One hand-off phase: the code's way from the client's send (and from its answer) to the connector. */
  async function handoff(prefix: string, lanes: number, total: number) {
    const accounts = await createAccounts(server, key, prefix, lanes);
    // A first login reads 90 days of history: a warm-up, not measured.
    await logins(accounts, 1);
    const perLane = Math.ceil(total / lanes);
    log(`hand-off: ${perLane * lanes} assisted logins, ${lanes} at a time`);
    const meter = meterServer(server, bankUrl);
    const result = await logins(accounts, perLane);
    const cost = meter.stop();
    const fromSend: number[] = [];
    const afterResponse: number[] = [];
    for (const s of result.submissions) {
      // Index 0 of each account was the warm-up's.
      const held = holds.get(s.username)?.[s.index + 1];
      if (held === undefined) throw new Error(`no hold recorded for ${s.username} #${s.index}`);
      fromSend.push(held - s.sentAt);
      afterResponse.push(Math.max(0, held - s.answeredAt));
    }
    return {
      accounts,
      fromSend: ms(fromSend),
      afterResponse: ms(afterResponse),
      samples: fromSend.length,
      loginsPerS: round(result.submissions.length / result.seconds, 1),
      cost: perLogin(cost, result.submissions.length),
      clockErrorMs: result.clockErrorMs,
    };
  }

  const single = await handoff('s', 1, sizes.singleLogins);

  // With a local endpoint subscribed to `assistance_required`: the prompt's way to a webhook too.
  const receiver = await startReceiver();
  let laned: Awaited<ReturnType<typeof handoff>>;
  const promptToWebhook: number[] = [];
  try {
    const endpoint = await fetch(`${server.url}/v1/webhooks`, {
      method: 'POST',
      headers: { authorization: `Api-Key ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ url: receiver.url, events: ['assistance_required'] }),
    });
    if (endpoint.status !== 201) throw new Error(`webhook endpoint: ${endpoint.status} ${await endpoint.text()}`);
    const endpointId = ((await endpoint.json()) as { id: string }).id;
    laned = await handoff('h', sizes.lanes, sizes.laneLogins);
    await server.delivery.drain();
    const arrivals = receiver.arrivals;
    for (const lane of laned.accounts) {
      const sent = prompts.get(lane.username) ?? [];
      const arrived = arrivals.get(lane.id) ?? [];
      if (arrived.length !== sent.length)
        throw new Error(`${lane.username}: ${sent.length} prompts, ${arrived.length} webhooks`);
      // The warm-up's prompt and webhook included: they time the same way.
      for (const [i, at] of arrived.entries()) promptToWebhook.push(at - sent[i]!);
    }
    await fetch(`${server.url}/v1/webhooks/${endpointId}`, {
      method: 'DELETE',
      headers: { authorization: `Api-Key ${key}` },
    });
  } finally {
    await receiver.stop();
  }

  // The ceiling: many accounts logging in at once, no webhook endpoint; a first round reads 90 days of history.
  const accounts = await createAccounts(server, key, 't', sizes.throughputAccounts);
  log(`throughput: warm-up round over ${accounts.length} accounts`);
  await logins(accounts, 1);
  log(`throughput: ${sizes.throughputRounds} rounds over ${accounts.length} accounts`);
  const meter = meterServer(server, bankUrl);
  const throughput = await logins(accounts, sizes.throughputRounds);
  const cost = perLogin(meter.stop(), throughput.submissions.length);

  const lanesKey = `lanes_${sizes.lanes}`;
  return {
    handoff_ms: { lanes_1: single.fromSend, [lanesKey]: laned.fromSend },
    handoff_detail: {
      // Today's older figure: from the 202 reaching the client (0 when the connector already held the code).
      after_response_ms: { lanes_1: single.afterResponse, [lanesKey]: laned.afterResponse },
      samples: { lanes_1: single.samples, [lanesKey]: laned.samples },
      logins_per_s: { lanes_1: single.loginsPerS, [lanesKey]: laned.loginsPerS },
      clock_error_ms: round(Math.max(single.clockErrorMs, laned.clockErrorMs, throughput.clockErrorMs), 3),
    },
    prompt_to_webhook_ms: ms(promptToWebhook),
    logins_per_s: round(throughput.submissions.length / throughput.seconds, 1),
    logins_concurrent_accounts: accounts.length,
    server_cpu_ms_per_login: cost.cpu_ms,
    server_cost_per_login: {
      throughput: cost,
      lanes_1: single.cost,
      // With the webhook endpoint: its fan-out and one delivery a login included.
      [`${lanesKey}_webhook`]: laned.cost,
    },
  };
}
