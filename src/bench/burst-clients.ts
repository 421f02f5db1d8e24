import { absoluteNow } from './stats.js';

/**
 * The burst bench's clients, in a process of their own (forked by `burst.ts`): for each account that
 * asks for an SMS code they wait for the prompt (status long-polls), read the code from the sandbox
 * bank's phone page (the bank's own process) and post it to the API, as an integrator's relay would.
 */
export interface BurstClientsTask {
  apiUrl: string;
  /** The sandbox bank process, ending in `/sandbox-bank/`. */
  bankUrl: string;
  key: string;
  accounts: { id: string; username: string }[];
  /** Give up on an account after this long, ms. */
  timeoutMs: number;
}

export interface BurstSubmission {
  accountId: string;
  /** Absolute ms (wall clock of this machine): code sent, answer received. */
  sentAt: number;
  answeredAt: number;
  status: number;
}

export type BurstClientsReply =
  | { ok: true; submissions: BurstSubmission[]; errors: string[] }
  | { ok: false; error: string };

interface Status {
  pending_assistance: { id: string } | null;
  session: unknown;
  last_success_at: string | null;
}

async function run(task: BurstClientsTask): Promise<{ submissions: BurstSubmission[]; errors: string[] }> {
  const auth = { authorization: `Api-Key ${task.key}` };
  const deadline = Date.now() + task.timeoutMs;

  /** Long-polls the account's status until `done` holds (null: the deadline passed). */
  async function until(accountId: string, done: (s: Status) => boolean): Promise<Status | null> {
    let etag: string | null = null;
    let wait = 0;
    while (Date.now() < deadline) {
      const response: Response = await fetch(
        `${task.apiUrl}/v1/accounts/${accountId}/status${wait ? `?wait=${wait}` : ''}`,
        {
          headers: etag ? { ...auth, 'if-none-match': etag } : auth,
        },
      );
      if (response.status !== 200) throw new Error(`status answered ${response.status}`);
      const body = (await response.json()) as Status;
      if (done(body)) return body;
      etag = response.headers.get('etag');
      wait = 10;
    }
    return null;
  }

  const submissions: BurstSubmission[] = [];
  const errors: string[] = [];
  await Promise.all(
    task.accounts.map(async (account) => {
      try {
        // Every prompt until the account's login succeeded: a login of ours that ended early (a lost
        // worker, our overload) runs again and asks for a new code.
        for (;;) {
          const seen = await until(
            account.id,
            (s) => s.pending_assistance !== null || (s.session === null && s.last_success_at !== null),
          );
          if (!seen?.pending_assistance) return;
          const phone = await fetch(`${task.bankUrl}phone/${encodeURIComponent(account.username)}`);
          const code = ((await phone.json()) as { messages: { code: string }[] }).messages[0]?.code;
          if (!code) throw new Error(`no SMS on ${account.username}'s phone`);
          const sentAt = absoluteNow();
          const response = await fetch(`${task.apiUrl}/v1/accounts/${account.id}/otp`, {
            method: 'POST',
            headers: { ...auth, 'content-type': 'application/json' },
            body: JSON.stringify({ code, request_id: seen.pending_assistance.id }),
          });
          const answeredAt = absoluteNow();
          await response.arrayBuffer();
          submissions.push({ accountId: account.id, sentAt, answeredAt, status: response.status });
          // The answer moves the status on (the code in flight, then the login's end or a new prompt).
          await until(account.id, (s) => s.pending_assistance?.id !== seen.pending_assistance!.id);
        }
      } catch (error) {
        errors.push(`${account.username}: ${error instanceof Error ? error.message : String(error)}`);
      }
    }),
  );
  return { submissions, errors };
}

process.once('message', (task: BurstClientsTask) => {
  run(task).then(
    (result) => process.send?.({ ok: true, ...result } satisfies BurstClientsReply, () => process.exit(0)),
    (error: unknown) =>
      process.send?.(
        { ok: false, error: error instanceof Error ? (error.stack ?? error.message) : String(error) },
        () => process.exit(1),
      ),
  );
});
