import autocannon from 'autocannon';
import { type BenchAccount, makeBenchClient, type Submission } from './client.js';
import { answerClockPings } from './clock.js';

/**
 * The load clients, in a child process of the bench (`fork`): their own process and event loop, as an
 * integrator's relay or back office would be, so a saturated server cannot slow its own clients down
 * and hide its overload. Timestamps are on this process's clock; the parent converts them with the
 * offset it measured (clock.ts).
 */
export type DriverTask =
  | {
      kind: 'logins';
      url: string;
      key: string;
      /** The sandbox bank's base URL (its phone pages), ending in `/sandbox-bank/`. */
      bankUrl: string;
      accounts: BenchAccount[];
      perAccount: number;
    }
  | { kind: 'load'; url: string; headers: Record<string, string>; seconds: number; connections: number };

export type DriverResult =
  | { kind: 'logins'; submissions: Submission[]; seconds: number }
  | { kind: 'load'; rps: number; errors: number; non2xx: number };

export type DriverReply = { kind: 'done'; ok: true; result: DriverResult } | { kind: 'done'; ok: false; error: string };

async function runTask(task: DriverTask): Promise<DriverResult> {
  switch (task.kind) {
    case 'logins': {
      const client = makeBenchClient(task.url, task.key);
      const started = performance.now();
      const submissions: Submission[] = [];
      await Promise.all(
        task.accounts.map(async (account) => {
          for (let i = 0; i < task.perAccount; i++)
            submissions.push(await client.assistedLogin(account, i, task.bankUrl));
        }),
      );
      return { kind: 'logins', submissions, seconds: (performance.now() - started) / 1000 };
    }
    case 'load': {
      const result = await autocannon({
        url: task.url,
        headers: task.headers,
        duration: task.seconds,
        connections: task.connections,
      });
      return {
        kind: 'load',
        rps: result.requests.total / result.duration,
        errors: result.errors,
        non2xx: result.non2xx,
      };
    }
    default: {
      const never: never = task;
      throw new Error(`unknown task ${JSON.stringify(never)}`);
    }
  }
}

if (process.send) {
  const send = (reply: DriverReply) => process.send!(reply, () => process.exit(0));
  answerClockPings();
  process.on('message', (message: { kind: string; task?: DriverTask }) => {
    if (message.kind !== 'task' || !message.task) return;
    runTask(message.task).then(
      (result) => send({ kind: 'done', ok: true, result }),
      (error: unknown) =>
        send({
          kind: 'done',
          ok: false,
          error: error instanceof Error ? (error.stack ?? error.message) : String(error),
        }),
    );
  });
}
