import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { TEST_ENV } from './server.js';
import { storeEnv } from './store.js';

const execFileAsync = promisify(execFile);

/** A running `node dist/cli.js start …` process. */
export interface OtpilotProcess {
  child: ChildProcess;
  url: string;
  output(): string;
  /** SIGTERM (or `signal`), then resolves with the exit code once it has exited. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

const running = new Set<ChildProcess>();

/** SIGKILLs every process still running (an afterAll of each file that starts some). */
export function killAll(): void {
  for (const child of running) child.kill('SIGKILL');
  running.clear();
}

/** The environment of a process on the test store of `dataDir` (SQLite file, or its PostgreSQL schema). */
export async function processEnv(dataDir: string, extra: Record<string, string> = {}): Promise<NodeJS.ProcessEnv> {
  return {
    ...process.env,
    ...TEST_ENV,
    LOG_LEVEL: 'info',
    OTPILOT_DATA_DIR: dataDir,
    ...(await storeEnv(dataDir)),
    ...extra,
  };
}

/** Starts `otpilot start …args` and resolves once it listens; rejects with its output if it exits first. */
export function startOtpilot(args: string[], env: NodeJS.ProcessEnv): Promise<OtpilotProcess> {
  const child = spawn(process.execPath, ['dist/cli.js', 'start', ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  let output = '';
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      running.delete(child);
      resolve(code);
    }),
  );
  return new Promise((resolve, reject) => {
    const look = (chunk: string) => {
      output += chunk;
      const match = /"url":"(http:\/\/[^"]+)"[^\n]*"msg":"otpilot started"/.exec(output);
      if (match)
        resolve({
          child,
          url: match[1]!,
          output: () => output,
          stop(signal = 'SIGTERM') {
            if (child.exitCode === null && child.signalCode === null) child.kill(signal);
            return exited;
          },
        });
    };
    child.stdout!.setEncoding('utf8').on('data', look);
    child.stderr!.setEncoding('utf8').on('data', look);
    void exited.then((code) =>
      reject(Object.assign(new Error(`otpilot exited with ${code}: ${output}`), { code, output })),
    );
  });
}

/** Runs a one-shot command (`otpilot keys list …`); resolves with its exit code and output, never rejects. */
export async function otpilot(
  args: string[],
  env: NodeJS.ProcessEnv,
): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await execFileAsync(process.execPath, ['dist/cli.js', ...args], { env });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}
