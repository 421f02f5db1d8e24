import { parentPort, workerData } from 'node:worker_threads';
import autocannon from 'autocannon';
import { type BenchAccount, makeBenchClient, type Submission } from './client.js';

/** Work the main thread hands to this load-driving thread (its own event loop, its own core). */
export type DriverTask =
  | { kind: 'logins'; url: string; key: string; accounts: BenchAccount[]; perAccount: number }
  | { kind: 'load'; url: string; headers: Record<string, string>; seconds: number; connections: number };

export type DriverResult =
  | { kind: 'logins'; submissions: Submission[]; seconds: number }
  | { kind: 'load'; rps: number; errors: number; non2xx: number };

async function runTask(task: DriverTask): Promise<DriverResult> {
  switch (task.kind) {
    case 'logins': {
      const client = makeBenchClient(task.url, task.key);
      const started = performance.now();
      const submissions: Submission[] = [];
      await Promise.all(
        task.accounts.map(async (account) => {
          for (let i = 0; i < task.perAccount; i++) submissions.push(await client.assistedLogin(account, i));
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

type Reply = { ok: true; result: DriverResult } | { ok: false; error: string };
const settle = (send: (reply: Reply) => void) => (task: DriverTask) =>
  runTask(task).then(
    (result) => send({ ok: true, result }),
    (error: unknown) =>
      send({ ok: false, error: error instanceof Error ? (error.stack ?? error.message) : String(error) }),
  );

// Logins run in a worker thread (its timestamps share the server's clock); autocannon runs in a child
// process, because inside a worker thread it takes the thread for one of its own workers.
if (parentPort) void settle((reply) => parentPort!.postMessage(reply))(workerData as DriverTask);
else if (process.send) {
  process.once(
    'message',
    (task: DriverTask) => void settle((reply) => process.send!(reply, () => process.exit(0)))(task),
  );
}
