import { mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ENCRYPTED_COLUMNS } from '../src/security/rotation.js';
import { migrateToLatest, openSqliteStore } from '../src/store/db.js';
import { makeApi } from './helpers/api.js';
import { eventually, pendingRequest, scrape } from './helpers/flows.js';
import { killAll, otpilot, processEnv, startOtpilot } from './helpers/process.js';
import { tempDir } from './helpers/server.js';
import { dropStore, TEST_STORE } from './helpers/store.js';

/*
 * The operator's commands against real processes on the store of the project (SQLite or PostgreSQL):
 * the first start, the way back in, keys without the dashboard, organizations and key rotation.
 */

const dirs: string[] = [];
afterAll(async () => {
  killAll();
  for (const dir of dirs) {
    rmSync(dir, { recursive: true, force: true });
    await dropStore(dir);
  }
});

function folder(): string {
  const dir = tempDir();
  dirs.push(dir);
  return dir;
}

/** How a first start runs on this store: PostgreSQL as a split deployment's API process. */
const START_ARGS = TEST_STORE === 'postgres' ? ['--role', 'api'] : [];
const START_ENV: Record<string, string> = TEST_STORE === 'postgres' ? { OTPILOT_SANDBOX: 'false' } : {};

function secretsOf(dataDir: string) {
  const text = readFileSync(join(dataDir, 'first-start-secrets.txt'), 'utf8');
  return { key: /API key\s+(otpk_\S+)/.exec(text)![1]!, password: /Password\s+(\S+)/.exec(text)![1]! };
}

async function signIn(url: string, email: string, password: string): Promise<number> {
  const response = await fetch(`${url}/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email, password }),
  });
  await response.arrayBuffer();
  return response.status;
}

// Each test starts whole otpilot processes (and CLI runs); on a busy 2-core machine one start can
// take over 10 s, so the bound is generous: the test waits on the processes' own signals, not on time.
describe('first start and the way back in', { timeout: 120_000 }, () => {
  it('creates a missing data folder for the secrets, and resets a password and issues keys from the command line', async () => {
    const base = folder();
    // The data folder does not exist yet (on PostgreSQL nothing else would create it).
    const dataDir = join(base, 'nested', 'data');
    const env = await processEnv(base, { ...START_ENV, OTPILOT_DATA_DIR: dataDir });
    const server = await startOtpilot(START_ARGS, env);
    const secretsFile = join(dataDir, 'first-start-secrets.txt');
    expect(statSync(secretsFile).mode & 0o777).toBe(0o600);
    const { key, password } = secretsOf(dataDir);
    expect(server.output()).not.toContain(key);
    const api = makeApi(server.url, key);
    expect(await signIn(server.url, 'admin@otpilot.local', password)).toBe(200);

    // The way back in: a new password, printed once; the old one stops working at once.
    const reset = await otpilot(['users', 'reset-password', '--email', 'admin@otpilot.local', '--json'], env);
    expect(reset.code, reset.stderr).toBe(0);
    const fresh = JSON.parse(reset.stdout).password as string;
    expect(fresh).toMatch(/^\S{16}$/);
    expect(await signIn(server.url, 'admin@otpilot.local', password)).toBe(401);
    expect(await signIn(server.url, 'admin@otpilot.local', fresh)).toBe(200);
    const unknown = await otpilot(['users', 'reset-password', '--email', 'nobody@example.com'], env);
    expect(unknown).toMatchObject({ code: 2 });
    expect(unknown.stderr).toContain('no user nobody@example.com');

    // Keys from the command line, listed by the CLI and the API, revoked by either.
    const created = await otpilot(['keys', 'create', '--name', 'script', '--scopes', 'accounts:read', '--json'], env);
    expect(created.code, created.stderr).toBe(0);
    const scriptKey = JSON.parse(created.stdout) as { id: string; key: string };
    expect((await api.get('/v1/accounts', scriptKey.key)).status).toBe(200);
    const listed = await otpilot(['keys', 'list', '--json'], env);
    const ids = (JSON.parse(listed.stdout).data as { id: string; prefix: string }[]).map((k) => k.id);
    expect(ids).toContain(scriptKey.id);
    expect(listed.stdout).not.toContain(scriptKey.key.split('_')[2]);
    const viaApi = await api.get('/v1/api-keys');
    expect(viaApi.status).toBe(200);
    expect(viaApi.body.data.map((k: { id: string }) => k.id).sort()).toEqual([...ids].sort());
    expect(JSON.stringify(viaApi.body)).not.toContain(key);
    // keys:read and keys:write are scopes of their own.
    expect((await api.get('/v1/api-keys', scriptKey.key)).status).toBe(403);
    expect((await api.delete(`/v1/api-keys/${scriptKey.id}`, undefined, scriptKey.key)).status).toBe(403);

    const revoked = await otpilot(['keys', 'revoke', scriptKey.id], env);
    expect(revoked.code, revoked.stderr).toBe(0);
    // The server caches a verified key for up to 5 s.
    await eventually(
      () => api.get('/v1/accounts', scriptKey.key),
      (r) => r.status === 401,
      10_000,
    );
    expect((await api.delete(`/v1/api-keys/${scriptKey.id}`)).status).toBe(404);

    const another = JSON.parse(
      (await otpilot(['keys', 'create', '--name', 'other', '--scopes', 'status:read', '--json'], env)).stdout,
    ) as { id: string; key: string };
    expect((await api.delete(`/v1/api-keys/${another.id}`)).status).toBe(204);
    expect((await api.get('/v1/accounts', another.key)).status).toBe(401);
    expect((await api.delete('/v1/api-keys/key_unknown')).status).toBe(404);
    expect(await server.stop()).toBe(0);
  });

  it('commits nothing when the secrets cannot be delivered, and bootstraps on the next start', async () => {
    const dataDir = folder();
    const env = await processEnv(dataDir, START_ENV);
    // A folder where the secrets file should go: writing it fails.
    const blocker = join(dataDir, 'first-start-secrets.txt');
    mkdirSync(blocker);
    const failed = (await startOtpilot(START_ARGS, env).catch((error: Error & { code: number }) => error)) as Error & {
      code: number;
      output: string;
    };
    expect(failed.code).toBe(1);
    expect(failed.output).toContain('EISDIR');
    const orgs = await otpilot(['orgs', 'list', '--json'], env);
    expect(orgs.code, orgs.stderr).toBe(0);
    expect(JSON.parse(orgs.stdout).data).toEqual([]);

    rmSync(blocker, { recursive: true });
    const server = await startOtpilot(START_ARGS, env);
    const { key } = secretsOf(dataDir);
    expect((await makeApi(server.url, key).get('/v1/api-keys')).body.data).toHaveLength(1);
    expect(JSON.parse((await otpilot(['orgs', 'list', '--json'], env)).stdout).data).toHaveLength(1);
    // A later start delivers nothing new.
    rmSync(join(dataDir, 'first-start-secrets.txt'));
    expect(await server.stop()).toBe(0);
    const again = await startOtpilot(START_ARGS, env);
    expect(again.output()).not.toContain('first-start-secrets.txt');
    expect(await again.stop()).toBe(0);
  });

  it('creates a second organization from the command line', async () => {
    const dataDir = folder();
    const env = await processEnv(dataDir, START_ENV);
    const server = await startOtpilot(START_ARGS, env);
    const first = makeApi(server.url, secretsOf(dataDir).key);
    const created = await otpilot(
      ['orgs', 'create', '--name', 'Second', '--admin-email', 'Boss@Second.test', '--json'],
      env,
    );
    expect(created.code, created.stderr).toBe(0);
    const org = JSON.parse(created.stdout);
    expect(org).toMatchObject({ name: 'Second', admin_email: 'boss@second.test' });
    expect(await signIn(server.url, 'boss@second.test', org.admin_password)).toBe(200);
    const second = makeApi(server.url, org.api_key);
    const firstKeys = (await first.get('/v1/api-keys')).body.data.map((k: { id: string }) => k.id);
    const secondKeys = (await second.get('/v1/api-keys')).body.data.map((k: { id: string }) => k.id);
    expect(secondKeys).toHaveLength(1);
    expect(firstKeys).not.toContain(secondKeys[0]);
    expect((await second.delete(`/v1/api-keys/${firstKeys[0]}`)).status).toBe(404);
    // Several organizations: commands that act on one need --org.
    const ambiguous = await otpilot(['keys', 'list'], env);
    expect(ambiguous.code).toBe(2);
    expect(ambiguous.stderr).toContain('pass --org');
    expect((await otpilot(['keys', 'list', '--org', org.id, '--json'], env)).stdout).toContain(secondKeys[0]);
    const taken = await otpilot(['orgs', 'create', '--name', 'Third', '--admin-email', 'boss@second.test'], env);
    expect(taken.code).toBe(2);
    expect(taken.stderr).toContain('already in use');
    expect(await server.stop()).toBe(0);
  });
});

describe('master key rotation', { timeout: 120_000 }, () => {
  it('knows every encrypted column of the store', async () => {
    // The schema is the same on both stores; SQLite's introspection sees only this store's tables.
    const store = openSqliteStore(join(folder(), 'otpilot.db'));
    try {
      await migrateToLatest(store);
      const tables = await store.db.introspection.getTables();
      const encrypted = tables.flatMap((table) =>
        table.columns.filter((c) => c.name.endsWith('_enc')).map((c) => `${table.name}.${c.name}`),
      );
      const rotated = ENCRYPTED_COLUMNS.map((spec) => `${spec.table}.${spec.column}`);
      expect(encrypted.length).toBeGreaterThan(10);
      for (const column of encrypted) expect(rotated).toContain(column);
    } finally {
      await store.close();
    }
  });

  it('re-encrypts every secret: the store opens with the new key only, and logins still decrypt', async () => {
    const dataDir = folder();
    const oldKey = 'a'.repeat(64);
    const newKey = 'b'.repeat(64);
    // The whole process (with the sandbox bank) on both stores; PostgreSQL takes the key from the variable.
    const env = await processEnv(dataDir, TEST_STORE === 'postgres' ? { OTPILOT_MASTER_KEY: oldKey } : {});
    const server = await startOtpilot([], env);
    const secrets = readFileSync(join(dataDir, 'first-start-secrets.txt'), 'utf8');
    const key = /API key\s+(otpk_\S+)/.exec(secrets)![1]!;
    const accountId = /Tour account (acc_\S+)/.exec(secrets)![1]!;
    const api = makeApi(server.url, key);
    // Secrets of several kinds: credentials (tour account), an account TOTP secret and auth token, a webhook secret.
    expect(
      (
        await api.put(`/v1/accounts/${accountId}/config`, {
          webhook_url: 'http://127.0.0.1:9/hook',
          webhook_auth_type: 'bearer',
          webhook_auth_token: 'token-to-rotate',
        })
      ).status,
    ).toBe(200);
    const hook = await api.post('/v1/webhooks', { url: 'http://127.0.0.1:9/hook' });
    expect(hook.status, JSON.stringify(hook.body)).toBe(201);
    expect(await server.stop()).toBe(0);

    const original = TEST_STORE === 'sqlite' ? readFileSync(join(dataDir, 'master.key'), 'utf8').trim() : oldKey;
    const rotate = await otpilot(
      ['master-key', 'rotate'],
      TEST_STORE === 'postgres' ? { ...env, OTPILOT_NEW_MASTER_KEY: newKey } : env,
    );
    expect(rotate.code, rotate.stderr).toBe(0);
    expect(rotate.stdout).toMatch(/re-encrypted \d+ secrets/);
    const after = TEST_STORE === 'postgres' ? { ...env, OTPILOT_MASTER_KEY: newKey } : env;
    if (TEST_STORE === 'sqlite') {
      expect(readFileSync(join(dataDir, 'master.key'), 'utf8').trim()).toMatch(/^[0-9a-f]{64}$/);
      expect(() => statSync(join(dataDir, 'master.key.new'))).toThrow();
      expect(readFileSync(join(dataDir, 'master.key'), 'utf8').trim()).not.toBe(original);
      // The old key no longer opens the store.
      const rotated = readFileSync(join(dataDir, 'master.key'), 'utf8');
      const refused = await startOtpilot([], { ...env, OTPILOT_MASTER_KEY: original }).catch((e: Error) => e);
      expect(String(refused)).toContain('does not match');
      expect(readFileSync(join(dataDir, 'master.key'), 'utf8')).toBe(rotated);
    } else {
      const refused = await startOtpilot([], env).catch((e: Error) => e);
      expect(String(refused)).toContain('does not match');
    }

    const restarted = await startOtpilot([], after);
    const api2 = makeApi(restarted.url, key);
    // The login decrypts the credentials with the new key and reaches the bank's code prompt.
    await scrape(api2, accountId);
    expect((await pendingRequest(api2, accountId)).type).toBe('otp');
    const detail = await api2.get(`/v1/webhooks/${hook.body.id}`);
    expect(detail.status).toBe(200);
    expect(await restarted.stop()).toBe(0);

    // With the wrong current key, rotation refuses and changes nothing.
    const wrong = await otpilot(['master-key', 'rotate'], {
      ...env,
      OTPILOT_MASTER_KEY: 'c'.repeat(64),
      OTPILOT_NEW_MASTER_KEY: 'd'.repeat(64),
    });
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toContain('nothing was changed');
    const stillNew = await startOtpilot([], after);
    expect(await stillNew.stop()).toBe(0);
  });
});
