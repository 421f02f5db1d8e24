import { type ChildProcess, spawn } from 'node:child_process';
import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Processes the PostgreSQL benchmarks start (`node dist/cli.js …`), and reading their figures. */

export const CLI = fileURLToPath(new URL('../cli.js', import.meta.url));
/** What an otpilot process logs once it listens (group 1: its URL). */
export const READY = /"url":"(http:\/\/[^"]+)"[^\n]*"msg":"otpilot started"/;
const OUTPUT_KEPT = 20_000;
/** BENCH_LOG_DIR: where each process's whole output is written (none by default). */
const LOG_DIR = process.env.BENCH_LOG_DIR || null;

export interface Proc {
  name: string;
  child: ChildProcess;
  url: string;
  /** The last lines the process wrote (stdout and stderr), for error reports. */
  output(): string;
}

/** Everything this run started, so it can always be stopped (on success, failure and Ctrl-C alike). */
export class Processes {
  readonly all: Proc[] = [];
  private readonly pending = new Set<ChildProcess>();

  /** Starts `node dist/cli.js …args`; resolves once `ready` matches its output (group 1: its URL). */
  launch(name: string, args: string[], env: NodeJS.ProcessEnv, ready: RegExp, timeoutMs = 30_000): Promise<Proc> {
    const child = spawn(process.execPath, [CLI, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.pending.add(child);
    let output = '';
    let matched = false;
    return new Promise<Proc>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`${name} not ready within ${timeoutMs} ms: ${output}`)),
        timeoutMs,
      );
      const file = LOG_DIR ? join(LOG_DIR, `${name.replace(/\W+/g, '-')}.log`) : null;
      const look = (chunk: string) => {
        output = (output + chunk).slice(-OUTPUT_KEPT);
        if (file) appendFileSync(file, chunk);
        if (matched) return;
        const match = ready.exec(output);
        if (!match) return;
        matched = true;
        clearTimeout(timer);
        const proc: Proc = { name, child, url: match[1]!, output: () => output };
        this.all.push(proc);
        resolve(proc);
      };
      // Keep reading after it is ready, so a chatty process never blocks on a full pipe.
      child.stdout!.setEncoding('utf8').on('data', look);
      child.stderr!.setEncoding('utf8').on('data', look);
      child.once('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        this.pending.delete(child);
        if (!matched) reject(new Error(`${name} exited (${code ?? signal}) before it was ready: ${output}`));
      });
    });
  }

  /** Throws if a started process died on its own (the figures would be meaningless). */
  assertAlive(): void {
    for (const proc of this.all)
      if (proc.child.exitCode !== null || proc.child.signalCode !== null)
        throw new Error(
          `${proc.name} exited (${proc.child.exitCode ?? proc.child.signalCode}): ${proc.output().slice(-2000)}`,
        );
  }

  /** SIGTERM, then SIGKILL whatever is still running after `graceMs`; resolves when all have exited. */
  async stopAll(graceMs = 5000): Promise<void> {
    const children = [...new Set([...this.pending, ...this.all.map((p) => p.child)])];
    await Promise.all(children.map((child) => stopChild(child, graceMs)));
  }

  /** Last resort on an interrupt: SIGKILL, no waiting. */
  killNow(): void {
    for (const child of [...this.pending, ...this.all.map((p) => p.child)])
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
}

function stopChild(child: ChildProcess, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const hard = setTimeout(() => child.kill('SIGKILL'), graceMs);
    // A process that ignores even SIGKILL (it cannot) must still not hang the bench.
    const giveUp = setTimeout(resolve, graceMs + 5000);
    child.once('exit', () => {
      clearTimeout(hard);
      clearTimeout(giveUp);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

export async function metric(proc: Proc, name: string): Promise<number> {
  const text = await (await fetch(`${proc.url}/metrics`)).text();
  const match = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  if (!match) throw new Error(`no ${name} in ${proc.url}/metrics`);
  return Number(match[1]);
}

export async function bankStats(
  bank: Proc,
): Promise<{ activeLogins: number; maxActiveLogins: number; logins: number }> {
  const response = await fetch(`${bank.url}stats`);
  return (await response.json()) as { activeLogins: number; maxActiveLogins: number; logins: number };
}

/** Creates sandbox accounts through the API, `parallel` at a time. */
