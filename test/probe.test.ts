import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ERROR_STATUS } from '../src/core/errors.js';
import { SCOPES } from '../src/core/scopes.js';
import { makeKeysService } from '../src/keys/service.js';
import { makeLogger } from '../src/logger.js';
import { latestCode, startAssistedLogin } from './helpers/flows.js';
import { type Operation, operations, type Probe, probesFor, sample } from './helpers/probe.js';
import { startTestServer, type TestServer, tempDir } from './helpers/server.js';
import { schemaFor, TEST_STORE, testDatabaseUrl } from './helpers/store.js';

/**
 * Our own outside probe, generated from what the server says about itself: every operation of its
 * OpenAPI document with hostile input (no 5xx, the one error shape, statuses the document lists),
 * every `/v1` route against keys of each scope (from the routes' own `x-scopes`), and every secret
 * this file uses searched for in the log, the responses and the stored data.
 */

let t: TestServer;
const logDir = tempDir();
const logFile = join(logDir, 'server.log');
let doc: any;
let ops: Operation[];

/** Every secret this file hands the server. */
const secrets = new Map<string, string>();
/** The text of every response body, except the answers that show a secret by design (sign-in, creations). */
const bodies: string[] = [];

/** The one answer that shows the webhook secret (at creation): the search must find it there. */
let revealed = '';
let sessionToken = '';
let logoutToken = '';
let appToken = '';
const realIds: Record<string, string> = {};

const FAKE: Record<string, string> = {
  id: 'acc_00000000000000000000000000',
  movement_id: 'mov_00000000000000000000000000',
  delivery_id: 'dlv_00000000000000000000000000',
  results_id: 'res_00000000000000000000000000',
  relay_id: 'rly_00000000000000000000000000',
};

function remember(name: string, value: string): string {
  secrets.set(name, value);
  return value;
}

async function call(
  method: string,
  path: string,
  options: { body?: unknown; headers?: Record<string, string>; keep?: boolean } = {},
): Promise<{ status: number; body: any }> {
  const response = await fetch(`${t.url}${path}`, {
    method,
    headers: {
      authorization: `Api-Key ${t.key}`,
      ...(options.body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...options.headers,
    },
    ...(options.body !== undefined ? { body: JSON.stringify(options.body) } : {}),
  });
  const text = await response.text();
  if (options.keep !== false) bodies.push(text);
  return { status: response.status, body: text ? JSON.parse(text) : null };
}

/** Paths of the dashboard's second mounting of the /v1 routes (not in the document). */
const mirrored = new Set<string>();

/** Credentials for an operation: the bootstrap key on /v1, the session cookie on its dashboard mounting, a bearer session elsewhere. */
function auth(op: Operation): Record<string, string> {
  if (op.path.startsWith('/v1/')) return { authorization: `Api-Key ${t.key}` };
  if (mirrored.has(op.path)) return { cookie: `otpilot_session=${sessionToken}`, origin: t.url };
  // Signing out ends the session it names: that probe gets a session of its own.
  if (op.path === '/auth/logout') return { authorization: `Bearer ${logoutToken}` };
  if (op.path.startsWith('/widget/')) return { 'x-app-token': appToken };
  if (op.path.startsWith('/relay/twilio/')) return {};
  return { authorization: `Bearer ${sessionToken}` };
}

/** Real ids where the path names a resource this file made (so body and query probes reach handlers). */
function id(op: Operation, name: string): string {
  if (name === 'id') {
    const resource = /^\/(v1\/)?([a-z-]+)\//.exec(op.path)?.[2] ?? '';
    // A real id would let a probe delete what the others probe (a valid body is all it takes).
    if (op.method === 'DELETE') return FAKE.id!;
    return realIds[resource] ?? FAKE.id!;
  }
  return FAKE[name] ?? FAKE.id!;
}

beforeAll(async () => {
  t = await startTestServer({
    env: { OTPILOT_DATA_WAIT_SECONDS: '0' },
    // The server's own logger, at its most talkative, into a file this test reads.
    log: makeLogger('trace', pino.destination({ dest: logFile, sync: true })),
  });
  remember('bootstrap API key', t.key);
  const bootstrap = t.server.bootstrap!;
  remember('admin password', bootstrap.adminPassword);

  const signIn = async () => {
    const login = await call('POST', '/auth/login', {
      body: { email: bootstrap.adminEmail, password: bootstrap.adminPassword },
      headers: { authorization: '' },
      keep: false,
    });
    expect(login.status, JSON.stringify(login.body)).toBe(200);
    return login.body.token as string;
  };
  sessionToken = remember('session token', await signIn());
  logoutToken = remember('second session token', await signIn());

  const password = remember('bank password', `pw-${crypto.randomUUID()}`);
  const account = await call('POST', '/v1/accounts', {
    body: { bank_id: 'sandbox', name: 'Probe', credentials: { username: 'probe', password } },
  });
  expect(account.status, JSON.stringify(account.body)).toBe(201);
  realIds.accounts = account.body.id;
  const totp = remember('TOTP secret', 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXQ');
  const notification = remember('notification token', `nt-${crypto.randomUUID()}`);
  const config = await call('PUT', `/v1/accounts/${account.body.id}/config`, {
    body: { totp_secret: totp, notification_auth_token: notification },
  });
  expect(config.status, JSON.stringify(config.body)).toBe(200);

  const webhook = await call('POST', '/v1/webhooks', { body: { url: 'http://127.0.0.1:9/probe' }, keep: false });
  expect(webhook.status, JSON.stringify(webhook.body)).toBe(201);
  realIds.webhooks = webhook.body.id;
  remember('webhook secret', webhook.body.secret);
  revealed = JSON.stringify(webhook.body);

  const relay = remember('relay auth token', `rt-${crypto.randomUUID()}`);
  const created = await call('POST', '/v1/relays', { body: { provider: 'twilio', auth_token: relay } });
  expect(created.status, JSON.stringify(created.body)).toBe(201);

  const app = await call('POST', '/v1/app-tokens', {
    body: { name: 'probe', allowed_origins: ['https://app.example.com'] },
    keep: false,
  });
  expect(app.status, JSON.stringify(app.body)).toBe(201);
  // Publishable by design (listed, stored as is, sent by browsers): not a secret.
  appToken = app.body.token;

  const key = await call('POST', '/me/api-keys', {
    body: { name: 'probe', scopes: ['status:read'] },
    headers: { authorization: `Bearer ${sessionToken}` },
    keep: false,
  });
  expect(key.status, JSON.stringify(key.body)).toBe(201);
  remember('dashboard-made API key', key.body.key);

  // A code handed to a waiting login, through the whole path (engine, sandbox bank, audit).
  const assisted = await startAssistedLogin(t.api);
  const code = remember('one-time code', await latestCode(t.api, assisted.account.username));
  const submitted = await call('POST', `/v1/accounts/${assisted.account.id}/otp?wait=true`, {
    body: { code, request_id: assisted.request.id },
  });
  expect(submitted.body).toMatchObject({ outcome: 'accepted' });

  doc = (await call('GET', '/openapi.json', { headers: { authorization: '' } })).body;
  ops = operations(doc);
});

afterAll(async () => {
  await t?.close();
  rmSync(logDir, { recursive: true, force: true });
});

/** What is wrong with one answer (null: nothing). */
function violation(op: Operation, status: number, headers: Headers, text: string): string | null {
  if (status >= 500) return `${status}: ${text.slice(0, 200)}`;
  if (!/^req_[0-9a-z]{26}$/.test(headers.get('x-request-id') ?? '')) return `${status} without x-request-id`;
  if (status < 400) return null;
  if (!op.responses.includes(String(status))) return `${status} is not in the document (${op.responses.join(',')})`;
  if (!headers.get('content-type')?.includes('application/json')) return `${status} is not JSON: ${text.slice(0, 120)}`;
  let body: any;
  try {
    body = JSON.parse(text);
  } catch {
    return `${status} body is not JSON: ${text.slice(0, 120)}`;
  }
  const error = body?.error;
  const shaped =
    Object.keys(body ?? {}).join() === 'error' &&
    typeof error?.code === 'string' &&
    typeof error.message === 'string' &&
    error.message.length > 0 &&
    Object.keys(error).every((k) => ['code', 'message', 'details'].includes(k)) &&
    (error.details === undefined ||
      (Array.isArray(error.details) &&
        error.details.every((d: any) => typeof d?.path === 'string' && typeof d?.message === 'string')));
  if (!shaped) return `${status} is not the error shape: ${text.slice(0, 200)}`;
  if (ERROR_STATUS[error.code as keyof typeof ERROR_STATUS] !== status)
    return `${status} carries code ${error.code}: ${text.slice(0, 120)}`;
  return null;
}

/** The body as text; an event stream that opened stays open, so its status and headers are the answer. */
async function textOf(response: Response): Promise<string> {
  if (!response.headers.get('content-type')?.includes('text/event-stream')) return response.text();
  await response.body?.cancel();
  return '';
}

/** Sends one operation's probes in turn, recording each answer's status and any violation. */
async function send(op: Operation, probes: Probe[], problems: string[], statuses: number[]): Promise<void> {
  for (const probe of probes) {
    const response = await fetch(`${t.url}${probe.url}`, {
      method: probe.method,
      headers: probe.headers,
      ...(probe.body !== undefined ? { body: probe.body } : {}),
      signal: AbortSignal.timeout(20_000),
    }).catch((error: Error) => error);
    if (response instanceof Error) {
      problems.push(`${probe.label}: ${response.message}`);
      statuses.push(0);
      continue;
    }
    const text = await textOf(response);
    bodies.push(text);
    statuses.push(response.status);
    const problem = violation(op, response.status, response.headers, text);
    if (problem) problems.push(`${probe.label}: ${problem}`);
  }
}

describe('probe', () => {
  it('fuzz: every operation of the OpenAPI document answers hostile input with a 4xx in the error shape, never a 5xx', async () => {
    expect(ops.length).toBeGreaterThan(60);
    const problems: string[] = [];
    const statuses: number[] = [];
    // The dashboard mounts the /v1 handlers again behind its session: those get the shallow probes.
    const mirrors = ops
      .filter((op) => op.path.startsWith('/v1/'))
      .map((op) => ({ ...op, path: op.path.slice('/v1'.length) }))
      .filter((op) =>
        t.server.app.hasRoute({ method: op.method as 'GET', url: op.path.replace(/\{([^}]+)\}/g, ':$1') }),
      );
    for (const op of mirrors) mirrored.add(op.path);
    expect(mirrors.length).toBeGreaterThan(30);
    const mirrorStatuses: number[] = [];
    const queue = [
      ...ops.map((op) => ({ op, probes: probesFor(op, { auth, id }), into: statuses })),
      ...mirrors.map((op) => ({ op, probes: probesFor(op, { auth, id }, true), into: mirrorStatuses })),
    ];
    // Four operations at a time: enough to keep the server busy, bounded for a shared machine.
    const workers = Array.from({ length: 4 }, async () => {
      for (let next = queue.shift(); next; next = queue.shift()) await send(next.op, next.probes, problems, next.into);
    });
    await Promise.all(workers);
    // The cookie opened the dashboard mountings: their probes reached validation and the handlers.
    expect(mirrorStatuses.filter((s) => s === 400 || s === 404).length).toBeGreaterThan(mirrorStatuses.length / 2);
    statuses.push(...mirrorStatuses);
    const fivexx = statuses.filter((s) => s >= 500 || s === 0).length;
    console.log(
      `probe fuzz (${TEST_STORE}): ${statuses.length} requests over ${ops.length} operations and ${mirrors.length} dashboard mountings, ${fivexx} 5xx`,
    );
    // The figures for CI and release notes, next to the JUnit report (an ignored folder).
    mkdirSync('test-results', { recursive: true });
    writeFileSync(
      join('test-results', `probe-${TEST_STORE}.json`),
      `${JSON.stringify({ store: TEST_STORE, requests: statuses.length, operations: ops.length, mountings: mirrors.length, fivexx, problems: problems.length })}\n`,
    );
    expect(statuses.length).toBeGreaterThan(2000);
    expect(problems.slice(0, 40), `${problems.length} problems`).toEqual([]);
  }, 120_000);

  it('scope matrix: on every /v1 route a key without the route’s scope gets 403, a key with it does not', async () => {
    const keys = makeKeysService({ db: t.server.store.db, clock: Date.now });
    const byScope = new Map<string, string>();
    for (const scope of SCOPES) {
      const created = await keys.create({
        orgId: t.orgId,
        name: `probe ${scope}`,
        scopes: scope,
        accountIds: null,
        createdBy: null,
      });
      if (!created.ok) throw new Error(created.message);
      byScope.set(scope, remember(`key ${scope}`, created.value.key));
    }
    const guarded = ops.filter((op) => op.path.startsWith('/v1/') && op.scopes);
    expect(guarded.length).toBeGreaterThan(40);
    // Every route that needs a key names its scopes.
    expect(
      ops.filter((op) => op.path.startsWith('/v1/') && op.secured && !op.scopes).map((op) => `${op.method} ${op.path}`),
    ).toEqual([]);
    const wrong: string[] = [];
    let requests = 0;
    for (const op of guarded) {
      const path = op.path.replace(/\{([^}]+)\}/g, (_all, name: string) => FAKE[name] ?? FAKE.id!);
      const body = op.body && op.bodyType === 'application/json' ? JSON.stringify(sample(op.body)) : undefined;
      for (const scope of SCOPES) {
        const response = await fetch(`${t.url}${path}`, {
          method: op.method,
          headers: {
            authorization: `Api-Key ${byScope.get(scope)}`,
            ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
          },
          ...(body !== undefined ? { body } : {}),
          signal: AbortSignal.timeout(20_000),
        });
        const text = await textOf(response);
        bodies.push(text);
        requests += 1;
        const allowed = op.scopes!.includes(scope);
        const refused = response.status === 403;
        if (allowed === refused || response.status === 401 || response.status >= 500)
          wrong.push(`${op.method} ${op.path} with ${scope}: ${response.status} ${text.slice(0, 100)}`);
      }
    }
    console.log(
      `probe scope matrix (${TEST_STORE}): ${requests} requests over ${guarded.length} routes × ${SCOPES.length} scopes`,
    );
    expect(wrong).toEqual([]);
  }, 120_000);

  it('secrets: none of them is in the log, a response body or the stored data', async () => {
    expect(secrets.size).toBeGreaterThanOrEqual(10);
    const log = readFileSync(logFile, 'utf8');
    expect(log.length).toBeGreaterThan(1000);
    const responses = bodies.join('\n');
    const stored = await storedText();
    expect(stored.length).toBeGreaterThan(1000);
    // Whole tokens only: a 6-digit code is inside many longer numbers (timestamps) by chance.
    const tokenOf = (secret: string) =>
      new RegExp(`(?<![A-Za-z0-9])${secret.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(?![A-Za-z0-9])`);
    expect(tokenOf(secrets.get('webhook secret')!).test(revealed)).toBe(true);
    const found: string[] = [];
    for (const [name, secret] of secrets) {
      const token = tokenOf(secret);
      if (token.test(log)) found.push(`${name} in the log`);
      if (token.test(responses)) found.push(`${name} in a response`);
      if (token.test(stored)) found.push(`${name} in the stored data`);
    }
    expect(found).toEqual([]);
  });
});

/** The store's bytes as text: the SQLite file and its WAL, or every row of the PostgreSQL schema. */
async function storedText(): Promise<string> {
  if (TEST_STORE === 'sqlite') {
    const file = join(t.dataDir, 'otpilot.db');
    return ['', '-wal']
      .filter((suffix) => existsSync(file + suffix))
      .map((suffix) => readFileSync(file + suffix).toString('latin1'))
      .join('\n');
  }
  const client = new pg.Client({ connectionString: testDatabaseUrl() });
  await client.connect();
  try {
    const schema = schemaFor(t.dataDir);
    const { rows: tables } = await client.query<{ name: string }>(
      'select table_name as name from information_schema.tables where table_schema = $1',
      [schema],
    );
    const dumps: string[] = [];
    for (const { name } of tables) {
      const { rows } = await client.query(`select row_to_json(t)::text as row from "${schema}"."${name}" t`);
      dumps.push(...rows.map((r: { row: string }) => r.row));
    }
    return dumps.join('\n');
  } finally {
    await client.end();
  }
}
