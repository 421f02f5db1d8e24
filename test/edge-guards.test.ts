import { existsSync, rmSync, statSync } from 'node:fs';
import { request } from 'node:http';
import { connect } from 'node:net';
import { join } from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { openSqliteStore } from '../src/store/db.js';
import { createSandboxAccount } from './helpers/flows.js';
import { operations, type Schema } from './helpers/probe.js';
import { startTestServer, type TestServer, tempDir } from './helpers/server.js';

/**
 * The edge of the HTTP API: text the stores cannot keep, requests Fastify or Node refuse before a
 * route, enum refusals, cookie CSRF and the configured public origin, and the files of the SQLite store.
 */

let t: TestServer;
let accountId: string;

beforeAll(async () => {
  t = await startTestServer();
  accountId = (await createSandboxAccount(t.api, 'edge')).id;
});

afterAll(async () => {
  await t?.close();
});

/** The api.md error shape with this status and code; returns its details. */
async function refusal(response: Response, status: number, code = 'VALIDATION_FAILED') {
  const text = await response.text();
  expect(response.status, text).toBe(status);
  expect(response.headers.get('content-type')).toMatch(/^application\/json/);
  expect(response.headers.get('x-request-id')).toMatch(/^req_[0-9a-z]{26}$/);
  const body = JSON.parse(text);
  expect(Object.keys(body)).toEqual(['error']);
  expect(body.error.code).toBe(code);
  expect(body.error.message.length).toBeGreaterThan(0);
  return {
    message: body.error.message as string,
    details: (body.error.details ?? []) as { path: string; message: string }[],
  };
}

const withKey = (init: RequestInit & { headers?: Record<string, string> } = {}): RequestInit => ({
  ...init,
  headers: { authorization: `Api-Key ${t.key}`, ...init.headers },
});

const json = (method: string, body: string): RequestInit =>
  withKey({ method, body, headers: { 'content-type': 'application/json' } });

describe('text the stores cannot keep', () => {
  it('a NUL in a path id, a query value, a body string or a field name: 400 naming the field, and nothing changes', async () => {
    const cases: [string, RequestInit, string][] = [
      ['/v1/accounts/acc_%00', withKey(), '/params/id'],
      ['/v1/accounts?cursor=a%00b', withKey(), '/querystring/cursor'],
      [`/v1/accounts/${accountId}`, json('PATCH', JSON.stringify({ name: 'a\u0000b' })), '/name'],
      [`/v1/accounts/${accountId}/config`, json('PUT', JSON.stringify({ sms_sender: 'x\u0000' })), '/sms_sender'],
      ['/v1/webhooks', json('POST', JSON.stringify({ url: 'http://127.0.0.1:9/', events: ['a\u0000'] })), '/events/0'],
      [`/v1/accounts/${accountId}`, json('PATCH', '{"na\\u0000me":"x"}'), '/na\u0000me'],
    ];
    for (const [path, init, field] of cases) {
      const { details } = await refusal(await fetch(`${t.url}${path}`, init), 400);
      expect(
        details.map((d) => d.path),
        path,
      ).toContain(field);
    }
    const account = await t.api.get(`/v1/accounts/${accountId}`);
    expect(account.body.name).not.toContain('\u0000');
    // A plugin with an error handler of its own (the sandbox bank answers in its own shape) gets a 400 too.
    expect((await fetch(`${t.url}/sandbox-bank/phone/%00`)).status).toBe(400);
  });

  it('an unpaired UTF-16 surrogate in a body string: 400 (both drivers would store U+FFFD instead)', async () => {
    const reply = await fetch(`${t.url}/v1/accounts/${accountId}`, json('PATCH', '{"name":"a\\ud800b"}'));
    const { details } = await refusal(reply, 400);
    expect(details).toEqual([{ path: '/name', message: expect.stringMatching(/surrogate/) }]);
    // A pair (an emoji) is text like any other.
    const emoji = await t.api.patch(`/v1/accounts/${accountId}`, { name: 'Savings 🙂' });
    expect(emoji.status).toBe(200);
    expect(emoji.body.name).toBe('Savings 🙂');
  });
});

describe('requests refused before a route answer the one error shape', () => {
  it('malformed percent-encoding: 400 VALIDATION_FAILED, with a request id', async () => {
    for (const path of ['/v1/accounts/%E0%A4%A', '/v1/accounts/%ED%A0%80', '/v1/accounts/%']) {
      const { message } = await refusal(await fetch(`${t.url}${path}`, withKey()), 400);
      expect(message).toMatch(/percent-encoded/);
    }
  });

  it('a 10,000-character id: 400 VALIDATION_FAILED that does not echo it', async () => {
    const { message } = await refusal(await fetch(`${t.url}/v1/accounts/${'a'.repeat(10_000)}`, withKey()), 400);
    expect(message.length).toBeLessThan(200);
  });

  it('a body over the limit (413) and a form body (415) use our codes', async () => {
    await refusal(
      await fetch(`${t.url}/v1/accounts`, json('POST', JSON.stringify({ pad: 'x'.repeat(1_100_000) }))),
      413,
      'PAYLOAD_TOO_LARGE',
    );
    await refusal(
      await fetch(
        `${t.url}/v1/accounts`,
        withKey({ method: 'POST', body: 'a=b', headers: { 'content-type': 'application/x-www-form-urlencoded' } }),
      ),
      415,
      'UNSUPPORTED_MEDIA_TYPE',
    );
  });

  it("requests Node's HTTP parser refuses get a JSON answer in the shape too", async () => {
    const raw = (text: string) =>
      new Promise<string>((resolve, reject) => {
        const socket = connect(t.server.port, '127.0.0.1', () => socket.end(text));
        let answer = '';
        socket.setEncoding('utf8');
        socket.on('data', (chunk: string) => {
          answer += chunk;
        });
        socket.on('end', () => resolve(answer));
        socket.on('error', reject);
      });
    const malformed = await raw('GET /v1/banks HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n');
    expect(malformed).toMatch(/^HTTP\/1\.1 400 /);
    expect(JSON.parse(malformed.split('\r\n\r\n')[1]!).error.code).toBe('VALIDATION_FAILED');
    const huge = await raw(`GET /v1/banks HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
    expect(huge).toMatch(/^HTTP\/1\.1 431 /);
    expect(JSON.parse(huge.split('\r\n\r\n')[1]!).error.code).toBe('VALIDATION_FAILED');
  });

  it('the OpenAPI document lists 400, 401, 403, 413, 415 and 503 where they can happen', async () => {
    const doc = (await t.api.get('/openapi.json', null)).body;
    const post = doc.paths['/v1/accounts'].post.responses;
    for (const status of ['400', '401', '403', '413', '415', '503']) expect(Object.keys(post)).toContain(status);
    expect(Object.keys(doc.paths['/v1/accounts/{id}'].get.responses)).toEqual(
      expect.arrayContaining(['400', '401', '403', '404', '503']),
    );
    expect(Object.keys(doc.paths['/v1/banks'].get.responses)).not.toContain('413');
    expect(doc.paths['/v1/accounts'].post['x-scopes']).toEqual(['accounts:write']);
    expect(doc.paths['/v1/accounts'].post.security).toEqual([{ apiKey: [] }]);
  });
});

/** Every place a schema of the document takes one of a fixed set of values: [json pointer, values]. */
function enums(schema: Schema, path: string, out: [string, unknown[]][]): void {
  const fixed = (s: Schema): unknown[] | null =>
    s.enum ? s.enum : s.const !== undefined ? [s.const] : s.type === 'null' ? [] : null;
  if (schema.anyOf) {
    const values = schema.anyOf.map(fixed);
    if (values.every((v) => v !== null) && values.some((v) => v!.length > 0)) {
      out.push([path, values.flat()]);
      return;
    }
    for (const branch of schema.anyOf) enums(branch, path, out);
    return;
  }
  if (schema.enum && schema.enum.length > 0) out.push([path, schema.enum]);
  for (const [name, property] of Object.entries(schema.properties ?? {})) enums(property, `${path}/${name}`, out);
  if (schema.items) enums(schema.items, `${path}/0`, out);
}

/** A body (or query) that puts `value` at `pointer`, arrays and objects created on the way. */
function placing(pointer: string, value: unknown): Record<string, unknown> {
  const parts = pointer.split('/').slice(1);
  const root: Record<string, unknown> = {};
  let node: any = root;
  parts.forEach((part, i) => {
    const last = i === parts.length - 1;
    const next = parts[i + 1];
    const child = last ? value : next === '0' ? [] : {};
    if (Array.isArray(node)) node.push(child);
    else node[part] = child;
    node = child;
  });
  return root;
}

describe('requests racing on one account', () => {
  it('concurrent restarts and scrapes never answer 5xx (a deadlock victim is retried)', async () => {
    const { id } = await createSandboxAccount(t.api, 'race');
    const replies = await Promise.all(
      Array.from({ length: 24 }, (_, i) => t.api.post(`/v1/accounts/${id}/${i % 2 === 0 ? 'restart' : 'scrape'}`)),
    );
    const statuses = replies.map((r) => r.status);
    expect(
      statuses.filter((s) => s >= 500),
      JSON.stringify(replies.filter((r) => r.status >= 500).map((r) => r.body)),
    ).toEqual([]);
    expect(statuses.every((s) => s === 202 || s === 409)).toBe(true);
  });
});

describe('enum refusals', () => {
  it('an unknown webhook event type: one detail naming the value and every allowed one', async () => {
    const reply = await fetch(
      `${t.url}/v1/webhooks`,
      json('POST', JSON.stringify({ url: 'http://127.0.0.1:9/', events: ['nope'] })),
    );
    const { details } = await refusal(reply, 400);
    expect(details, JSON.stringify(details)).toHaveLength(1);
    expect(details[0]!.path).toBe('/events/0');
    expect(details[0]!.message).toContain('"nope" is not one of');
    for (const type of ['"assistance_required"', '"results_ready"', '"webhook_endpoint_disabled"'])
      expect(details[0]!.message).toContain(type);
  });

  it('every enum of every body and query schema in the document is refused the same way', async () => {
    const doc = (await t.api.get('/openapi.json', null)).body;
    const checked: string[] = [];
    for (const op of operations(doc)) {
      if (!op.path.startsWith('/v1/') || op.method === 'DELETE') continue;
      // Instance administration takes a scope the bootstrap key (`*`) never has: refused before validation.
      if (op.scopes?.includes('instance:admin')) continue;
      const path = op.path.replace(/\{id\}/, accountId).replace(/\{[^}]+\}/g, 'x_00000000000000000000000000');
      const found: [string, unknown[]][] = [];
      if (op.body && op.bodyType === 'application/json') enums(op.body, '', found);
      for (const [pointer, allowed] of found) {
        const reply = await fetch(`${t.url}${path}`, json(op.method, JSON.stringify(placing(pointer, 'not-a-value'))));
        if (reply.status === 404) continue;
        const { details } = await refusal(reply, 400);
        const mine = details.filter((d) => d.path === pointer);
        expect(mine, `${op.method} ${op.path} ${pointer}: ${JSON.stringify(details)}`).toHaveLength(1);
        expect(mine[0]!.message).toContain('"not-a-value" is not one of');
        for (const value of allowed) expect(mine[0]!.message).toContain(JSON.stringify(value));
        checked.push(`${op.method} ${op.path} ${pointer}`);
      }
      for (const param of op.parameters.filter((p) => p.in === 'query')) {
        const found: [string, unknown[]][] = [];
        enums(param.schema, '', found);
        if (found.length === 0 || op.path.includes('{')) continue;
        const reply = await fetch(`${t.url}${path}?${param.name}=not-a-value`, withKey());
        const { details } = await refusal(reply, 400);
        const mine = details.filter((d) => d.path === `/querystring/${param.name}`);
        expect(mine, `${op.path}?${param.name}: ${JSON.stringify(details)}`).toHaveLength(1);
        for (const value of found[0]![1]) expect(mine[0]!.message).toContain(JSON.stringify(value));
        checked.push(`${op.method} ${op.path}?${param.name}`);
      }
    }
    expect(checked.length).toBeGreaterThan(8);
  });
});

describe('cookie writes and the public origin', () => {
  async function signIn(server: TestServer): Promise<string> {
    const bootstrap = server.server.bootstrap!;
    const login = await fetch(`${server.url}/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: bootstrap.adminEmail, password: bootstrap.adminPassword }),
    });
    expect(login.status).toBe(200);
    return `otpilot_session=${((await login.json()) as { token: string }).token}`;
  }

  const rename = (server: TestServer, cookie: string, headers: Record<string, string>) =>
    fetch(`${server.url}/accounts/${server.tourAccountId}`, {
      method: 'PATCH',
      headers: { cookie, 'content-type': 'application/json', ...headers },
      body: JSON.stringify({ name: 'Renamed by cookie' }),
    });

  /** The same rename with a Host header of our choosing (fetch always sends the real one). */
  const renameWithHost = (server: TestServer, cookie: string, host: string, origin: string) =>
    new Promise<number>((resolve, reject) => {
      const body = JSON.stringify({ name: 'Renamed by cookie' });
      const sent = request(
        `${server.url}/accounts/${server.tourAccountId}`,
        { method: 'PATCH', headers: { host, origin, cookie, 'content-type': 'application/json' } },
        (response) => {
          response.resume();
          response.on('end', () => resolve(response.statusCode ?? 0));
        },
      );
      sent.on('error', reject);
      sent.end(body);
    });

  it('a cookie write with Sec-Fetch-Site: none, or with neither Origin nor Sec-Fetch-Site, is refused; same-origin is served', async () => {
    const cookie = await signIn(t);
    await refusal(await rename(t, cookie, { 'sec-fetch-site': 'none' }), 403, 'FORBIDDEN');
    await refusal(await rename(t, cookie, { 'sec-fetch-site': 'cross-site' }), 403, 'FORBIDDEN');
    await refusal(await rename(t, cookie, {}), 403, 'FORBIDDEN');
    expect((await rename(t, cookie, { 'sec-fetch-site': 'same-origin' })).status).toBe(200);
    expect((await rename(t, cookie, { origin: t.url })).status).toBe(200);
  });

  it('without OTPILOT_PUBLIC_URL the origin follows the Host header; with it, only the configured origin is ours', async () => {
    const cookie = await signIn(t);
    // A client chooses its Host: without a configured origin, a matching pair passes.
    expect(await renameWithHost(t, cookie, 'evil.example', 'http://evil.example')).toBe(200);

    const pinned = await startTestServer({ env: { OTPILOT_PUBLIC_URL: 'https://otpilot.example.com/' } });
    try {
      const pinnedCookie = await signIn(pinned);
      expect(await renameWithHost(pinned, pinnedCookie, 'evil.example', 'http://evil.example')).toBe(403);
      await refusal(await rename(pinned, pinnedCookie, { origin: pinned.url }), 403, 'FORBIDDEN');
      expect((await rename(pinned, pinnedCookie, { origin: 'https://otpilot.example.com' })).status).toBe(200);
    } finally {
      await pinned.close();
    }
  });

  it('OTPILOT_PUBLIC_URL must be an http(s) origin', () => {
    const check = (value: string) => loadConfig({ OTPILOT_PUBLIC_URL: value });
    for (const bad of [
      'otpilot.example.com',
      'ftp://x.example',
      'https://x.example/otpilot',
      'https://u:p@x.example',
      'https://x.example/?a=1',
    ]) {
      const result = check(bad);
      expect(result.ok, bad).toBe(false);
      if (!result.ok) expect(result.errors.join()).toMatch(/OTPILOT_PUBLIC_URL/);
    }
    const good = check('https://otpilot.example.com:8443');
    expect(good.ok && good.config.publicUrl).toBe('https://otpilot.example.com:8443');
  });
});

describe('the SQLite store on disk', () => {
  it('creates its folders 0700 and the database, -wal and -shm 0600 whatever the umask', async () => {
    const root = tempDir();
    const file = join(root, 'nested', 'data', 'otpilot.db');
    const previous = process.umask(0);
    let store: ReturnType<typeof openSqliteStore> | null = null;
    try {
      store = openSqliteStore(file);
      await sql`create table probe (x integer)`.execute(store.db);
      await sql`insert into probe values (1)`.execute(store.db);
    } finally {
      process.umask(previous);
    }
    try {
      expect(existsSync(`${file}-wal`) && existsSync(`${file}-shm`)).toBe(true);
      const mode = (path: string) => statSync(path).mode & 0o777;
      expect(mode(join(root, 'nested'))).toBe(0o700);
      expect(mode(join(root, 'nested', 'data'))).toBe(0o700);
      for (const path of [file, `${file}-wal`, `${file}-shm`]) expect(mode(path), path).toBe(0o600);
    } finally {
      await store?.close();
      rmSync(root, { recursive: true, force: true });
    }
  });
});
