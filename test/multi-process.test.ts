import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Api, makeApi } from './helpers/api.js';
import { createSandboxAccount, eventually, pendingRequest, scrape, sessionEnd } from './helpers/flows.js';
import { TEST_ENV, tempDir } from './helpers/server.js';
import { dropStore, schemaFor, storeEnv, testDatabaseUrl, urlWithSchema } from './helpers/store.js';

/*
 * The PostgreSQL deployment as it runs in production: the sandbox bank, two API processes and two
 * workers, each its own OS process (`node dist/cli.js …`), sharing one store. Runs in the postgres
 * project only (vitest.config.ts): several processes cannot share the embedded SQLite store.
 */

const run = promisify(execFile);
const LEASE_MS = 3000;
const BANK_CAP = 6;

interface Proc {
  child: ChildProcess;
  url: string;
  pid: number;
  output(): string;
}

const dataDir = tempDir();
const children: ChildProcess[] = [];
let env: Record<string, string | undefined>;
let bank: Proc;
let api1: Proc;
let api2: Proc;
let workers: Proc[] = [];
let a1: Api;
let a2: Api;
let db: pg.Pool;

/** Starts `node dist/cli.js …args` and resolves with its URL once `ready` matches its output. */
function launch(args: string[], ready: RegExp, extraEnv: Record<string, string> = {}): Promise<Proc> {
  const child = spawn(process.execPath, ['dist/cli.js', ...args], {
    env: { ...env, ...extraEnv },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let output = '';
  return new Promise<Proc>((resolve, reject) => {
    const look = (chunk: string) => {
      output += chunk;
      const match = ready.exec(output);
      if (match) resolve({ child, url: match[1]!, pid: child.pid!, output: () => output });
    };
    child.stdout!.setEncoding('utf8').on('data', look);
    child.stderr!.setEncoding('utf8').on('data', look);
    child.once('exit', (code) => reject(new Error(`${args.join(' ')} exited with ${code}: ${output}`)));
  });
}

function start(role: 'api' | 'worker'): Promise<Proc> {
  return launch(['start', '--role', role], /"url":"(http:\/\/[^"]+)"[^\n]*"msg":"otpilot started"/);
}

function kill(proc: Proc): Promise<void> {
  return new Promise((resolve) => {
    if (proc.child.exitCode !== null || proc.child.signalCode !== null) return resolve();
    proc.child.once('exit', () => resolve());
    proc.child.kill('SIGKILL');
  });
}

async function metric(proc: Proc, name: string): Promise<number> {
  const text = await (await fetch(`${proc.url}/metrics`)).text();
  const match = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  if (!match) throw new Error(`no ${name} in ${proc.url}/metrics`);
  return Number(match[1]);
}

async function bankStats(): Promise<{ activeLogins: number; maxActiveLogins: number; logins: number }> {
  return (await fetch(`${bank.url}stats`)).json() as Promise<{
    activeLogins: number;
    maxActiveLogins: number;
    logins: number;
  }>;
}

async function phoneCode(username: string): Promise<string> {
  const reply = (await (await fetch(`${bank.url}phone/${encodeURIComponent(username)}`)).json()) as {
    messages: { code: string }[];
  };
  const code = reply.messages[0]?.code;
  if (!code) throw new Error(`no SMS on ${username}'s phone`);
  return code;
}

/** The worker process whose lease owner id names `pid` (owners are `wkr_<host>_<pid>_<random>`). */
function workerOf(owner: string): Proc {
  const found = workers.find((w) => owner.split('_').includes(String(w.pid)));
  if (!found) throw new Error(`no worker owns ${owner}`);
  return found;
}

/** A scheduled `otp` account whose login waits for a code, and the worker process holding it. */
async function waitingLogin() {
  const account = await createSandboxAccount(a1, 'otp', { schedule: 'every 1h' });
  const sessionId = await scrape(a1, account.id);
  const request = await pendingRequest(a2, account.id);
  const { rows } = await db.query<{ lease_owner: string }>('select lease_owner from sessions where id = $1', [
    sessionId,
  ]);
  return { account, sessionId, request, holder: workerOf(rows[0]!.lease_owner) };
}

/** The account (whose session `endedId` was cut short) runs again at once elsewhere and logs in with a code. */
async function runsAgain(account: { id: string; username: string }, endedId: string): Promise<void> {
  const next = await eventually(
    () => a1.get(`/v1/accounts/${account.id}/status`),
    (r) => r.body.pending_assistance !== null && r.body.session?.id !== endedId,
    LEASE_MS * 3,
  );
  const submitted = await a1.post(`/v1/accounts/${account.id}/otp?wait=true`, {
    code: await phoneCode(account.username),
    request_id: next.body.pending_assistance.id,
  });
  expect(submitted.status).toBe(200);
  expect((await sessionEnd(a1, next.body.session.id)).state).toBe('succeeded');
}

beforeAll(async () => {
  env = {
    ...process.env,
    ...TEST_ENV,
    ...(await storeEnv(dataDir)),
    LOG_LEVEL: 'info',
    OTPILOT_DATA_DIR: dataDir,
    OTPILOT_SANDBOX: 'false',
    OTPILOT_LEASE_MS: String(LEASE_MS),
    OTPILOT_BANK_CONCURRENCY: `sandbox=${BANK_CAP}`,
    OTPILOT_PG_POOL_SIZE: '5',
  };
  bank = await launch(['sandbox-bank', '--port', '0', '--slow-ms', '100'], /sandbox bank at (http:\S+)/);
  env.OTPILOT_SANDBOX_URL = bank.url;
  await run(process.execPath, ['dist/cli.js', 'migrate'], { env });
  api1 = await start('api');
  const secrets = readFileSync(join(dataDir, 'first-start-secrets.txt'), 'utf8');
  const key = /API key\s+(otpk_\S+)/.exec(secrets)![1]!;
  [api2, ...workers] = await Promise.all([start('api'), start('worker'), start('worker')]);
  a1 = makeApi(api1.url, key);
  a2 = makeApi(api2.url, key);
  db = new pg.Pool({ connectionString: urlWithSchema(testDatabaseUrl(), schemaFor(dataDir)), max: 2 });
  db.on('error', () => {});
}, 60_000);

afterAll(async () => {
  await Promise.all(children.map((child) => (child.exitCode === null ? child.kill('SIGKILL') : undefined)));
  await db?.end();
  await dropStore(dataDir);
  rmSync(dataDir, { recursive: true, force: true });
});

describe('two API processes and two workers on PostgreSQL', () => {
  it('splits the roles: workers serve only /health and /metrics, APIs run no logins', async () => {
    const health = await (await fetch(`${workers[0]!.url}/health`)).json();
    expect(health).toEqual({ ok: true, role: 'worker', database: 'up' });
    expect((await fetch(`${workers[0]!.url}/v1/accounts`)).status).toBe(404);
    expect((await a1.get('/health', null)).body).toEqual({ ok: true, role: 'api', database: 'up' });
    // Exactly one worker holds the scheduler lock; an API process never competes for it.
    await eventually(
      async () => (await Promise.all(workers.map((w) => metric(w, 'otpilot_scheduler_leader')))).join(','),
      (flags) => flags === '1,0' || flags === '0,1',
    );
    expect(await fetch(`${api1.url}/metrics`).then((r) => r.text())).not.toMatch(/otpilot_scheduler_leader/);
  });

  it('completes a login with a code posted to the API process that did not create it; SSE on either sees it', async () => {
    const stream = await fetch(`${api2.url}/v1/events`, {
      headers: { authorization: `Api-Key ${a1.key}`, accept: 'text/event-stream' },
    });
    expect(stream.status).toBe(200);
    const reader = stream.body!.getReader();
    let seen = '';
    const account = await createSandboxAccount(a1, 'otp');
    const sessionId = await scrape(a1, account.id);
    const request = await pendingRequest(a2, account.id);
    const submitted = await a2.post(`/v1/accounts/${account.id}/otp?wait=true`, {
      code: await phoneCode(account.username),
      request_id: request.id,
    });
    expect(submitted.status, JSON.stringify(submitted.body)).toBe(200);
    expect(submitted.body).toMatchObject({ submitted: true, outcome: 'accepted' });
    expect((await sessionEnd(a1, sessionId)).state).toBe('succeeded');
    // The stream on the other API process carried the whole story, created on api1, run on a worker.
    const decoder = new TextDecoder();
    while (!/"type":"scrape_succeeded"[^\n]*/.test(seen) || !seen.includes(account.id)) {
      const { value, done } = await reader.read();
      if (done) break;
      seen += decoder.decode(value, { stream: true });
    }
    await reader.cancel();
    const types = [...seen.matchAll(/^data: (.*)$/gm)]
      .map((m) => JSON.parse(m[1]!) as { type: string; account_id: string })
      .filter((e) => e.account_id === account.id)
      .map((e) => e.type);
    expect(types).toEqual(expect.arrayContaining(['assistance_required', 'assistance_fulfilled', 'scrape_succeeded']));
    expect(types.indexOf('assistance_required')).toBeLessThan(types.indexOf('scrape_succeeded'));
  });

  it('runs 500 scheduled accounts once each across both workers, never more logins at the bank than its cap', async () => {
    const before = await bankStats();
    const claimedBefore = await Promise.all(workers.map((w) => metric(w, 'otpilot_sessions_claimed_total')));
    const ids: string[] = [];
    // Half are slow at the bank (100 ms a call), so logins overlap and the cap has something to hold.
    for (let i = 0; i < 500; i += 25) {
      const batch = await Promise.all(
        Array.from({ length: 25 }, (_, j) =>
          createSandboxAccount((i + j) % 2 === 0 ? a1 : a2, (i + j) % 10 === 0 ? 'slow' : 'alice', {
            schedule: 'every 1h',
          }),
        ),
      );
      ids.push(...batch.map((a) => a.id));
    }
    // All due at once: the scheduler (on whichever worker holds the lock) queues them in one tick.
    await db.query('update accounts set next_run_at = $1 where id = any($2)', [Date.now(), ids]);
    await eventually(
      async () =>
        (
          await db.query<{ n: string }>(
            "select count(*) as n from sessions where account_id = any($1) and state in ('succeeded', 'failed', 'cancelled')",
            [ids],
          )
        ).rows[0]!.n,
      (n) => Number(n) === 500,
      120_000,
    );
    const { rows } = await db.query<{ account_id: string; runs: string; succeeded: string; failures: string }>(
      "select account_id, count(*) as runs, count(*) filter (where state = 'succeeded') as succeeded, string_agg(failure_category || ': ' || failure_message, '; ') as failures from sessions where account_id = any($1) group by account_id",
      [ids],
    );
    expect(rows).toHaveLength(500);
    expect(rows.filter((r) => Number(r.runs) !== 1 || Number(r.succeeded) !== 1)).toEqual([]);
    // The bank saw each login once ...
    const after = await bankStats();
    expect(after.logins - before.logins).toBe(500);
    // ... never more than the cap at once (counted by the bank) ...
    expect(after.maxActiveLogins).toBeLessThanOrEqual(BANK_CAP);
    // ... and our own sessions never overlapped beyond it either (from the sessions table).
    const spans = await db.query<{ started_at: number; finished_at: number }>(
      "select started_at, finished_at from sessions where account_id = any($1) or state in ('running', 'awaiting_assistance')",
      [ids],
    );
    const edges = spans.rows.flatMap((s) => [
      [s.started_at, 1],
      [s.finished_at ?? Number.MAX_SAFE_INTEGER, -1],
    ]);
    edges.sort((x, y) => x[0]! - y[0]! || x[1]! - y[1]!);
    let open = 0;
    let peak = 0;
    for (const [, step] of edges) {
      open += step!;
      peak = Math.max(peak, open);
    }
    expect(peak).toBeLessThanOrEqual(BANK_CAP);
    expect(peak).toBeGreaterThan(1);
    // Both workers took a share.
    const claimedAfter = await Promise.all(workers.map((w) => metric(w, 'otpilot_sessions_claimed_total')));
    expect(claimedAfter.map((n, i) => n - claimedBefore[i]!).every((n) => n > 0)).toBe(true);
  }, 180_000);

  it('fails a login whose worker was SIGKILLed (worker_lost) within the lease period, cancels its request and runs the account again', async () => {
    const { account, sessionId, request, holder } = await waitingLogin();
    const killedAt = Date.now();
    await kill(holder);
    const ended = await sessionEnd(a2, sessionId, LEASE_MS * 3);
    const noticedAfter = Date.now() - killedAt;
    expect(ended.state).toBe('failed');
    expect(ended.failure_category).toBe('worker_lost');
    // Lease period plus one poll of this test's own loop.
    expect(noticedAfter).toBeLessThanOrEqual(LEASE_MS + 500);
    const cancelled = await db.query('select state, resolution_reason from assistance_requests where id = $1', [
      request.id,
    ]);
    expect(cancelled.rows[0]).toEqual({ state: 'cancelled', resolution_reason: 'worker_lost' });
    // The scheduled account runs again at once, on the surviving worker, and completes with a code.
    await runsAgain(account, sessionId);
    workers = workers.filter((w) => w !== holder);
    workers.push(await start('worker'));
  }, 60_000);

  it('hands a waiting login back on SIGTERM: the worker exits cleanly and the account runs at once on another', async () => {
    const { account, sessionId, request, holder } = await waitingLogin();
    const exited = new Promise<number | null>((resolve) => holder.child.once('exit', (code) => resolve(code)));
    holder.child.kill('SIGTERM');
    expect(await exited).toBe(0);
    // Ended by the worker itself before it left (no lease expiry needed).
    const ended = await a1.get(`/v1/sessions/${sessionId}`);
    expect(ended.body).toMatchObject({ state: 'failed', failure_category: 'shutdown' });
    const cancelled = await db.query('select state, resolution_reason from assistance_requests where id = $1', [
      request.id,
    ]);
    expect(cancelled.rows[0]).toEqual({ state: 'cancelled', resolution_reason: 'shutdown' });
    await runsAgain(account, sessionId);
    workers = workers.filter((w) => w !== holder);
    workers.push(await start('worker'));
  }, 60_000);

  it('moves the scheduler to another worker within seconds when the lock holder is SIGKILLed', async () => {
    const flags = await Promise.all(workers.map((w) => metric(w, 'otpilot_scheduler_leader')));
    const leader = workers[flags.indexOf(1)]!;
    const other = workers.find((w) => w !== leader)!;
    const killedAt = Date.now();
    await kill(leader);
    await eventually(
      () => metric(other, 'otpilot_scheduler_leader'),
      (flag) => flag === 1,
      10_000,
    );
    expect(Date.now() - killedAt).toBeLessThan(5000);
    // And it schedules: a due account gets its run.
    const account = await createSandboxAccount(a2, 'alice', { schedule: 'every 1h' });
    await db.query('update accounts set next_run_at = $1 where id = $2', [Date.now(), account.id]);
    const run = await eventually(
      () => a2.get(`/v1/accounts/${account.id}/sessions`),
      (r) =>
        r.body.data.some(
          (s: { state: string; trigger: string }) => s.trigger === 'schedule' && s.state === 'succeeded',
        ),
      10_000,
    );
    expect(run.body.data).toHaveLength(1);
    workers = [other];
  }, 30_000);

  it('stops an API process cleanly on SIGTERM while the other keeps serving', async () => {
    const exited = new Promise<number | null>((resolve) => api2.child.once('exit', (code) => resolve(code)));
    api2.child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect((await a1.get('/v1/accounts')).status).toBe(200);
  });
});
