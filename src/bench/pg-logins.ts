import { parentPort, workerData } from 'node:worker_threads';
import { type BenchAccount, makeBenchClient, type Submission } from './client.js';
import { absoluteNow } from './stats.js';

/**
 * The PostgreSQL hand-off's clients, on a worker thread of the bench process (its own event loop, and
 * the clock the in-process worker notes its hold times on): assisted logins through an API process,
 * with the codes read from the sandbox bank's own process.
 */
export interface PgLoginsTask {
  /** The API process. */
  apiUrl: string;
  /** The sandbox bank process, ending in `/sandbox-bank/`. */
  bankUrl: string;
  key: string;
  accounts: BenchAccount[];
  perAccount: number;
}

export type PgLoginsReply = { ok: true; submissions: Submission[]; seconds: number } | { ok: false; error: string };

async function run(task: PgLoginsTask): Promise<{ submissions: Submission[]; seconds: number }> {
  const client = makeBenchClient(task.apiUrl, task.key);
  const json = { authorization: `Api-Key ${task.key}`, 'content-type': 'application/json' };

  async function assistedLogin(account: BenchAccount, index: number): Promise<Submission> {
    await client.scrape(account.id);
    await client.statusUntil(account.id, (s) => s.pending_assistance !== null);
    const phone = await fetch(`${task.bankUrl}phone/${encodeURIComponent(account.username)}`);
    if (phone.status !== 200) throw new Error(`phone of ${account.username} answered ${phone.status}`);
    const code = ((await phone.json()) as { messages: { code: string }[] }).messages[0]?.code;
    if (!code) throw new Error(`no SMS on ${account.username}'s phone`);
    const sentAt = absoluteNow();
    const response = await fetch(`${task.apiUrl}/v1/accounts/${account.id}/otp`, {
      method: 'POST',
      headers: json,
      body: JSON.stringify({ code }),
    });
    const answeredAt = absoluteNow();
    if (response.status !== 202) throw new Error(`otp answered ${response.status}: ${await response.text()}`);
    await response.arrayBuffer();
    const end = await client.statusUntil(account.id, (s) => s.session === null);
    if (end.last_success_at === null) throw new Error(`login of ${account.id} did not succeed`);
    return { username: account.username, index, sentAt, answeredAt };
  }

  const started = performance.now();
  const submissions: Submission[] = [];
  await Promise.all(
    task.accounts.map(async (account) => {
      for (let i = 0; i < task.perAccount; i++) submissions.push(await assistedLogin(account, i));
    }),
  );
  return { submissions, seconds: (performance.now() - started) / 1000 };
}

if (parentPort) {
  const port = parentPort;
  run(workerData as PgLoginsTask).then(
    (result) => port.postMessage({ ok: true, ...result } satisfies PgLoginsReply),
    (error: unknown) =>
      port.postMessage({
        ok: false,
        error: error instanceof Error ? (error.stack ?? error.message) : String(error),
      } satisfies PgLoginsReply),
  );
}
