import type { RunningServer } from '../server.js';
import { makeBenchClient } from './client.js';
import { absoluteNow, percentile, round } from './stats.js';

/** Full FinTS logins with an smsTAN, one after another, through the FinTS bank mounted at /fints-bank. */
export async function benchFints(
  server: RunningServer,
  key: string,
  holds: Map<string, number[]>,
  logins: number,
  log: (message: string) => void,
) {
  const client = makeBenchClient(server.url, key);
  const json = { authorization: `Api-Key ${key}`, 'content-type': 'application/json' };
  const endpoint = `${server.url}/fints-bank/fints`;
  log(`fints: ${logins} FinTS logins with an smsTAN (first contact: synchronization, dialog init, TAN, data)`);
  const durations: number[] = [];
  const afterResponse: number[] = [];
  const afterRequest: number[] = [];
  for (let i = 0; i < logins; i++) {
    // A fresh bank user each time: every login is a first contact that needs a TAN.
    const user = `newsys+bench${i}`;
    const created = await fetch(`${server.url}/v1/accounts`, {
      method: 'POST',
      headers: json,
      body: JSON.stringify({
        bank_id: 'fints',
        name: user,
        credentials: { blz: '12345678', server_url: endpoint, user_id: user, pin: '12345' },
      }),
    });
    if (created.status !== 201) throw new Error(`create answered ${created.status}: ${await created.text()}`);
    const accountId = ((await created.json()) as { id: string }).id;
    const started = absoluteNow();
    const { sentAt, answeredAt } = await client.assistedLogin(
      { id: accountId, username: user },
      0,
      `${server.url}/fints-bank/`,
    );
    durations.push(absoluteNow() - started);
    const held = holds.get(user)?.[0];
    if (held === undefined) throw new Error(`no hold recorded for ${user}`);
    afterResponse.push(Math.max(0, held - answeredAt));
    afterRequest.push(held - sentAt);
  }
  return {
    fints_login_ms: { p50: round(percentile(durations, 50)), p99: round(percentile(durations, 99)) },
    fints_handoff_ms: { p50: round(percentile(afterResponse, 50)), p99: round(percentile(afterResponse, 99)) },
    fints_handoff_from_request_ms: {
      p50: round(percentile(afterRequest, 50)),
      p99: round(percentile(afterRequest, 99)),
    },
    fints_samples: durations.length,
  };
}
