import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { makeApi } from './helpers/api.js';
import { eventually, latestCode, pendingRequest, scrape, sessionEnd } from './helpers/flows.js';
import { TEST_ENV, tempDir } from './helpers/server.js';

const run = promisify(execFile);
const children: ChildProcess[] = [];
const dirs: string[] = [];

afterAll(() => {
  for (const child of children) child.kill('SIGKILL');
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** Starts `otpilot start` as its own OS process and resolves once it listens. */
async function startProcess(dataDir: string, env: Record<string, string> = {}) {
  const child = spawn(process.execPath, ['dist/cli.js', 'start'], {
    env: {
      ...process.env,
      ...TEST_ENV,
      LOG_LEVEL: 'info',
      OTPILOT_DATA_DIR: dataDir,
      OTPILOT_LEASE_MS: '1500',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let output = '';
  child.stdout!.setEncoding('utf8');
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (chunk: string) => {
    output += chunk;
  });
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout!.on('data', (chunk: string) => {
      output += chunk;
      const match = /"msg":"otpilot started"/.test(output) && /"url":"(http:\/\/[^"]+)"/.exec(output);
      if (match) resolve(match[1]!);
    });
    child.once('exit', (code) => reject(new Error(`otpilot exited with ${code}: ${output}`)));
  });
  return { child, url, output: () => output };
}

// Each test starts whole otpilot processes (and CLI runs); on a busy 2-core machine one start can
// take over 10 s, so the bound is generous: the test waits on the processes' own signals, not on time.
describe('the otpilot process', { timeout: 120_000 }, () => {
  it('hands out the first-start secrets once, never in the log, and issues keys from the CLI', async () => {
    const dataDir = tempDir();
    dirs.push(dataDir);
    const first = await startProcess(dataDir);
    // stdout is a pipe here, not a terminal: the secrets go to a 0600 file, and only its path is logged.
    const secretsFile = join(dataDir, 'first-start-secrets.txt');
    expect(statSync(secretsFile).mode & 0o777).toBe(0o600);
    const secrets = readFileSync(secretsFile, 'utf8');
    const key = /API key\s+(otpk_\S+)/.exec(secrets)![1]!;
    expect(secrets).toMatch(/Password\s+\S{12,}/);
    expect(first.output()).toContain('first-start-secrets.txt');
    expect(first.output()).not.toContain(key);
    expect(first.output()).not.toContain('Password');
    rmSync(secretsFile);
    const api = makeApi(first.url, key);
    expect((await api.get('/v1/accounts')).body.data).toHaveLength(1);
    first.child.kill('SIGTERM');
    const [code] = await once(first.child, 'exit');
    expect(code).toBe(0);

    const second = await startProcess(dataDir);
    expect(existsSync(secretsFile)).toBe(false);
    expect((await makeApi(second.url, key).get('/v1/accounts')).status).toBe(200);
    second.child.kill('SIGTERM');
    await once(second.child, 'exit');

    // The CLI issues more keys against the same store.
    const { stdout } = await run(
      process.execPath,
      ['dist/cli.js', 'keys', 'create', '--name', 'relay', '--scopes', 'otp:write,status:read', '--json'],
      {
        env: { ...process.env, OTPILOT_DATA_DIR: dataDir },
      },
    );
    const created = JSON.parse(stdout);
    expect(created).toMatchObject({ name: 'relay', scopes: ['otp:write', 'status:read'], account_ids: null });
    expect(created.key).toMatch(/^otpk_[0-9A-Za-z]{8}_[0-9A-Za-z]+$/);
    const bad = await run(process.execPath, ['dist/cli.js', 'keys', 'create', '--scopes', 'nope'], {
      env: { ...process.env, OTPILOT_DATA_DIR: dataDir },
    }).catch((error: { code: number; stderr: string }) => error);
    expect(bad).toMatchObject({ code: 2 });
    expect((bad as { stderr: string }).stderr).toContain('unknown scopes');
  });

  it('leaves no request pending forever when the process dies in the middle of a wait', async () => {
    const dataDir = tempDir();
    dirs.push(dataDir);
    const first = await startProcess(dataDir);
    const secrets = readFileSync(join(dataDir, 'first-start-secrets.txt'), 'utf8');
    const key = /API key\s+(otpk_\S+)/.exec(secrets)![1]!;
    const accountId = /Tour account (acc_\S+)/.exec(secrets)![1]!;
    const api1 = makeApi(first.url, key);
    const sessionId = await scrape(api1, accountId);
    const request = await pendingRequest(api1, accountId);
    expect(await latestCode(api1, 'otp')).toMatch(/^\d{6}$/);

    first.child.kill('SIGKILL');
    await once(first.child, 'exit');

    const second = await startProcess(dataDir);
    const api2 = makeApi(second.url, key);
    const session = await sessionEnd(api2, sessionId, 10_000);
    expect(session).toMatchObject({ state: 'failed', failure_category: 'worker_lost' });
    const closed = await eventually(
      () => api2.get(`/v1/assistance-requests?account_id=${accountId}`),
      (r) => r.body.data[0]?.state !== 'pending',
    );
    expect(closed.body.data[0]).toMatchObject({
      id: request.id,
      state: 'cancelled',
      resolution: { reason: 'worker_lost' },
    });
    // worker_lost says nothing about the account: no failure counted, no block, and a new login works.
    expect((await api2.get(`/v1/accounts/${accountId}`)).body).toMatchObject({
      consecutive_failures: 0,
      blocked_at: null,
    });
    const next = await scrape(api2, accountId);
    expect((await pendingRequest(api2, accountId)).session_id).toBe(next);
    second.child.kill('SIGTERM');
    await once(second.child, 'exit');
  });
});
