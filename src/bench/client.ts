import type { StatusView } from '../accounts/status.js';
import type { RunningServer } from '../server.js';

/** The benchmark's HTTP client: what an integrator's SMS relay or back office would do, with fetch. */
export interface BenchAccount {
  id: string;
  username: string;
}

export interface Submission {
  username: string;
  /** 0-based login number of this account. */
  index: number;
  /** Absolute ms: request sent and response received. */
  sentAt: number;
  answeredAt: number;
}

export function makeBenchClient(url: string, key: string) {
  const auth = { authorization: `Api-Key ${key}` };
  const json = { ...auth, 'content-type': 'application/json' };

  async function status(
    accountId: string,
    etag: string | null,
    wait: number,
  ): Promise<{ body: StatusView; etag: string | null }> {
    const response = await fetch(`${url}/v1/accounts/${accountId}/status${wait > 0 ? `?wait=${wait}` : ''}`, {
      headers: etag ? { ...auth, 'if-none-match': etag } : auth,
    });
    if (response.status !== 200) throw new Error(`status answered ${response.status}`);
    return { body: (await response.json()) as StatusView, etag: response.headers.get('etag') };
  }

  /** Long-polls the status until `done` holds. */
  async function statusUntil(accountId: string, done: (status: StatusView) => boolean): Promise<StatusView> {
    let current = await status(accountId, null, 0);
    const deadline = Date.now() + 60_000;
    while (!done(current.body)) {
      if (Date.now() > deadline) throw new Error(`account ${accountId} stuck: ${JSON.stringify(current.body)}`);
      current = await status(accountId, current.etag, 10);
    }
    return current.body;
  }

  return {
    /** `config` overrides account settings (e.g. a longer `assist_timeout_seconds`). */
    async createAccount(username: string, name: string, config?: Record<string, unknown>): Promise<string> {
      const response = await fetch(`${url}/v1/accounts`, {
        method: 'POST',
        headers: json,
        body: JSON.stringify({
          bank_id: 'sandbox',
          name,
          credentials: { username, password: 'bench' },
          ...(config ? { config } : {}),
        }),
      });
      if (response.status !== 201) throw new Error(`create answered ${response.status}: ${await response.text()}`);
      return ((await response.json()) as { id: string }).id;
    },

    async scrape(accountId: string): Promise<string> {
      const response = await fetch(`${url}/v1/accounts/${accountId}/scrape`, { method: 'POST', headers: auth });
      if (response.status !== 202) throw new Error(`scrape answered ${response.status}: ${await response.text()}`);
      return ((await response.json()) as { session_id: string }).session_id;
    },

    statusUntil,

    /**
     * One full assisted login: scrape, wait for the prompt, read the SMS on the bank's phone page
     * (`<bank>phone/:user`, the sandbox bank's by default), submit, wait for the end.
     */
    async assistedLogin(account: BenchAccount, index: number, bank = `${url}/sandbox-bank/`): Promise<Submission> {
      await this.scrape(account.id);
      await statusUntil(account.id, (s) => s.pending_assistance !== null);
      const phone = await fetch(`${bank}phone/${encodeURIComponent(account.username)}`);
      const code = ((await phone.json()) as { messages: { code: string }[] }).messages[0]!.code;
      const sentAt = performance.timeOrigin + performance.now();
      const response = await fetch(`${url}/v1/accounts/${account.id}/otp`, {
        method: 'POST',
        headers: json,
        body: JSON.stringify({ code }),
      });
      const answeredAt = performance.timeOrigin + performance.now();
      if (response.status !== 202) throw new Error(`otp answered ${response.status}: ${await response.text()}`);
      await response.arrayBuffer();
      const end = await statusUntil(account.id, (s) => s.session === null);
      if (end.last_success_at === null) throw new Error(`login of ${account.id} did not succeed`);
      return { username: account.username, index, sentAt, answeredAt };
    },
  };
}

/** Creates `count` sandbox accounts (`otp+<prefix><n>`), 50 at a time. */
export async function createAccounts(
  server: RunningServer,
  key: string,
  prefix: string,
  count: number,
  config?: Record<string, unknown>,
): Promise<BenchAccount[]> {
  const client = makeBenchClient(server.url, key);
  const accounts: BenchAccount[] = [];
  const batch = 50;
  for (let start = 0; start < count; start += batch) {
    const usernames = Array.from({ length: Math.min(batch, count - start) }, (_, i) => `otp+${prefix}${start + i}`);
    const ids = await Promise.all(usernames.map((username) => client.createAccount(username, username, config)));
    for (const [i, username] of usernames.entries()) accounts.push({ id: ids[i]!, username });
  }
  return accounts;
}
