import { type ChildProcess, fork } from 'node:child_process';
import { clockOffset } from './clock.js';
import type { DriverReply, DriverResult, DriverTask } from './driver.js';

/** The bench's helper processes seen from the parent: the load clients and the webhook receiver. */

/** Stops a forked helper: SIGKILL if it has not exited within `graceMs`. */
function reap(child: ChildProcess, graceMs = 5000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const hard = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(hard);
      resolve();
    });
  });
}

/**
 * Runs `task` in a fresh client process (driver.ts) and answers its result, the clients' times
 * moved onto this process's clock. Rejects if the child fails or dies.
 */
export async function drive(task: DriverTask): Promise<DriverResult & { clockErrorMs: number }> {
  // No inherited flags: `node --cpu-prof dist/bench/run.js` profiles the server, not its clients.
  const child = fork(new URL('./driver.js', import.meta.url), [], { stdio: 'inherit', execArgv: [] });
  try {
    const clock = await clockOffset(child);
    const reply = await new Promise<DriverReply>((resolve, reject) => {
      child.on('message', (message: { kind: string }) => {
        if (message.kind === 'done') resolve(message as DriverReply);
      });
      child.once('error', reject);
      child.once('exit', (code, signal) => reject(new Error(`bench client exited (${code ?? signal})`)));
      child.send({ kind: 'task', task });
    });
    if (!reply.ok) throw new Error(reply.error);
    const { result } = reply;
    if (result.kind === 'logins')
      for (const s of result.submissions) {
        s.sentAt -= clock.offsetMs;
        s.answeredAt -= clock.offsetMs;
      }
    return { ...result, clockErrorMs: clock.errorMs };
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await reap(child);
  }
}

export interface Receiver {
  url: string;
  /** Arrival times of `assistance_required` events by account id, on this process's clock. */
  arrivals: Map<string, number[]>;
  stop(): Promise<void>;
}

/** Starts the webhook receiver process (receiver.ts). */
export async function startReceiver(): Promise<Receiver> {
  const child = fork(new URL('./receiver.js', import.meta.url), [], { stdio: 'inherit', execArgv: [] });
  const raw: { account_id: string; at: number }[] = [];
  const port = await new Promise<number>((resolve, reject) => {
    child.on('message', (message: { kind: string; port?: number; type?: string; account_id?: string; at?: number }) => {
      if (message.kind === 'ready') resolve(message.port!);
      else if (message.kind === 'event' && message.type === 'assistance_required')
        raw.push({ account_id: message.account_id!, at: message.at! });
    });
    child.once('error', reject);
    child.once('exit', (code, signal) => reject(new Error(`webhook receiver exited (${code ?? signal})`)));
  });
  const clock = await clockOffset(child);
  return {
    url: `http://127.0.0.1:${port}/hook`,
    get arrivals() {
      const byAccount = new Map<string, number[]>();
      for (const { account_id, at } of raw)
        byAccount.set(account_id, [...(byAccount.get(account_id) ?? []), at - clock.offsetMs]);
      return byAccount;
    },
    async stop() {
      if (child.connected) child.send({ kind: 'stop' });
      await reap(child);
    },
  };
}
