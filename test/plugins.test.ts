import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Api, makeApi } from './helpers/api.js';
import { pendingRequest, scrape, sessionEnd, statusUntil } from './helpers/flows.js';
import { killAll, type OtpilotProcess, processEnv, startOtpilot } from './helpers/process.js';
import { tempDir } from './helpers/server.js';
import { dropStore, schemaFor, TEST_STORE, testDatabaseUrl, urlWithSchema } from './helpers/store.js';

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

let bank: string;
let api: Api;
let workers: OtpilotProcess[];

beforeAll(async () => {
  bank = await startBank();
  const env = await processEnv(dataDir, {
    OTPILOT_SANDBOX: 'false',
    // A path relative to the working folder, as an operator would write it.
    OTPILOT_CONNECTORS: './examples/connector/index.js',
    EXAMPLE_BANK_URL: bank,
    OTPILOT_LEASE_MS: '3000',
  });
  // PostgreSQL: an API process (which never runs logins) and two workers; SQLite: one process.
  const processes: OtpilotProcess[] =
    TEST_STORE === 'postgres'
      ? [
          await startOtpilot(['--role', 'api'], env),
          await startOtpilot(['--role', 'worker'], env),
          await startOtpilot(['--role', 'worker'], env),
        ]
      : [await startOtpilot([], env)];
  for (const p of processes) stops.push(() => p.stop());
  workers = TEST_STORE === 'postgres' ? processes.slice(1) : processes;
  const key = /API key\s+(otpk_\S+)/.exec(readFileSync(join(dataDir, 'first-start-secrets.txt'), 'utf8'))![1]!;
  api = makeApi(processes[0]!.url, key);
});

describe('a plain-JavaScript connector loaded with OTPILOT_CONNECTORS', () => {
  it('completes an assisted login whose code is posted over the External API, and remembers the device', async () => {
    const banks = await api.get('/v1/banks');
    // The plugin is listed beside the built-in banks (FinTS is always there).
    expect(banks.body.data.map((b: { id: string }) => b.id).sort()).toEqual(['example', 'fints']);
    expect(banks.body.data.find((b: { id: string }) => b.id === 'example')).toEqual({
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
    });

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

  it('keeps a persistent session on the worker that holds it, and logs in elsewhere once that worker dies', async () => {
    const created = await api.post('/v1/accounts', {
      bank_id: 'example',
      name: 'Persistent example',
      credentials: { username: 'pat', password: 'pw' },
      config: { session_type: 'persistent', keep_alive_seconds: 1 },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const accountId = created.body.id as string;
    const first = await scrape(api, accountId);
    const request = await pendingRequest(api, accountId);
    const { code } = await bankGet(bank, 'outbox/pat');
    expect((await api.post(`/v1/accounts/${accountId}/otp?wait=true`, { code, request_id: request.id })).status).toBe(
      200,
    );
    expect(await sessionEnd(api, first, 30_000)).toMatchObject({ state: 'succeeded' });
    await statusUntil(api, accountId, (s) => s.live_session_since !== null);
    const logins = (await bankGet(bank, 'stats')).logins;

    // With two workers, each scrape goes to the one keeping the session: no new login.
    for (let i = 0; i < 3; i++) {
      const reused = await sessionEnd(api, await scrape(api, accountId), 30_000);
      expect(reused).toMatchObject({ state: 'succeeded' });
      expect(reused.stages.map((x: { name: string }) => x.name)).toContain('reuse_session');
    }
    expect((await bankGet(bank, 'stats')).logins).toBe(logins);
    if (TEST_STORE !== 'postgres') return;

    // The holder dies: its claim lapses within the lease, and the other worker logs in (the device
    // token spares the code) and keeps the new session.
    const owner = await ownerOf(accountId);
    const holder = workers.find((w) => owner.split('_').includes(String(w.child.pid)))!;
    expect(await holder.stop('SIGKILL')).toBeNull();
    await statusUntil(api, accountId, (s) => s.live_session_since === null, 20_000);
    const again = await sessionEnd(api, await scrape(api, accountId), 30_000);
    expect(again).toMatchObject({ state: 'succeeded' });
    expect(again.stages.map((x: { name: string }) => x.name)).toContain('login');
    expect((await bankGet(bank, 'stats')).logins).toBe(logins + 1);
    await statusUntil(api, accountId, (s) => s.live_session_since !== null);
    expect(await ownerOf(accountId)).not.toBe(owner);
  });
});

/** The worker holding the account's kept session (PostgreSQL: read from its schema). */
async function ownerOf(accountId: string): Promise<string> {
  const client = new pg.Client({ connectionString: urlWithSchema(testDatabaseUrl(), schemaFor(dataDir)) });
  await client.connect();
  try {
    const { rows } = await client.query<{ live_session_owner: string }>(
      'select live_session_owner from accounts where id = $1',
      [accountId],
    );
    return rows[0]!.live_session_owner;
  } finally {
    await client.end();
  }
}
