import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { makeApi } from './helpers/api.js';
import { pendingRequest, scrape, sessionEnd } from './helpers/flows.js';
import { killAll, type OtpilotProcess, processEnv, startOtpilot } from './helpers/process.js';
import { tempDir } from './helpers/server.js';
import { dropStore, TEST_STORE } from './helpers/store.js';

/*
 * A connector written outside otpilot (examples/connector: plain JavaScript, its own HTTP bank), loaded
 * through OTPILOT_CONNECTORS into real processes: one `all` process on SQLite; on PostgreSQL an `api`
 * process and a `worker` process (the API never runs logins, so the worker loaded it too).
 */

const EXAMPLE = resolve(import.meta.dirname, '..', 'examples', 'connector');
const dataDir = tempDir();
const stops: Array<() => unknown> = [];

afterAll(async () => {
  for (const stop of stops.reverse()) await stop();
  killAll();
  rmSync(dataDir, { recursive: true, force: true });
  await dropStore(dataDir);
});

/** Starts the example bank as its own process; resolves with its URL. */
function startBank(): Promise<string> {
  const child: ChildProcess = spawn(process.execPath, [join(EXAMPLE, 'bank.js')], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  stops.push(() => child.kill('SIGKILL'));
  let output = '';
  return new Promise((resolveUrl, reject) => {
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      output += chunk;
      const match = /example bank at (\S+)/.exec(output);
      if (match) resolveUrl(match[1]!);
    });
    child.once('exit', (code) => reject(new Error(`the example bank exited with ${code}: ${output}`)));
  });
}

async function bankGet(bank: string, path: string): Promise<any> {
  return (await fetch(new URL(path, bank))).json();
}

describe('a plain-JavaScript connector loaded with OTPILOT_CONNECTORS', () => {
  it('completes an assisted login whose code is posted over the External API, and remembers the device', async () => {
    const bank = await startBank();
    const env = await processEnv(dataDir, {
      OTPILOT_SANDBOX: 'false',
      // A path relative to the working folder, as an operator would write it.
      OTPILOT_CONNECTORS: './examples/connector/index.js',
      EXAMPLE_BANK_URL: bank,
    });
    const processes: OtpilotProcess[] =
      TEST_STORE === 'postgres'
        ? [await startOtpilot(['--role', 'api'], env), await startOtpilot(['--role', 'worker'], env)]
        : [await startOtpilot([], env)];
    for (const p of processes) stops.push(() => p.stop());
    const key = /API key\s+(otpk_\S+)/.exec(readFileSync(join(dataDir, 'first-start-secrets.txt'), 'utf8'))![1]!;
    const api = makeApi(processes[0]!.url, key);

    const banks = await api.get('/v1/banks');
    expect(banks.body.data).toEqual([
      {
        id: 'example',
        name: 'Example Bank',
        connector: 'example',
        country: null,
        version: '0.1.0',
        script_version: '0.1.0',
        credential_fields: [
          { name: 'username', label: 'Username', type: 'text', required: true },
          { name: 'password', label: 'Password', type: 'password', required: true },
        ],
      },
    ]);

    const created = await api.post('/v1/accounts', {
      bank_id: 'example',
      name: 'Example account',
      credentials: { username: 'ada', password: 'correct horse' },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const accountId = created.body.id as string;

    const first = await scrape(api, accountId);
    const request = await pendingRequest(api, accountId);
    expect(request).toMatchObject({ type: 'otp', descriptor: { length: 6, type: 'numeric', channel: 'sms' } });
    const { code } = await bankGet(bank, 'outbox/ada');
    const submitted = await api.post(`/v1/accounts/${accountId}/otp?wait=true`, { code, request_id: request.id });
    expect(submitted.status, JSON.stringify(submitted.body)).toBe(200);
    expect(await sessionEnd(api, first, 30_000)).toMatchObject({ state: 'succeeded' });

    const movements = await api.get(`/v1/accounts/${accountId}/movements?limit=500`);
    expect(movements.status).toBe(200);
    expect(movements.body.data.length).toBeGreaterThan(0);
    expect(movements.body.data[0]).toMatchObject({ amount: '-4.20', currency: 'EUR', name: 'Coffee Corner' });
    const account = await api.get(`/v1/accounts/${accountId}`);
    expect(Date.parse(account.body.trust_expires_at)).toBeGreaterThan(Date.now());

    // The device token the connector stored skips the code next time.
    const second = await scrape(api, accountId);
    expect(await sessionEnd(api, second, 30_000)).toMatchObject({ state: 'succeeded' });
    expect(await bankGet(bank, 'stats')).toEqual({ logins: 2, codes_sent: 1 });
  });
});
