import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Config } from './config.js';
import type { Role } from './http/system-routes.js';
import { type BootstrapResult, formatBootstrap } from './orgs/bootstrap.js';
import { type Cipher, makeCipher } from './security/cipher.js';
import { loadMasterKey } from './security/master-key.js';
import { migrateToLatest, openPostgresStore, openSqliteStore, type Store } from './store/db.js';

/** What a process needs before it starts: its store, its cipher, whether its role fits, where first secrets go. */

const CHECK_KEY = 'master_key_check';

/** A store opened with the wrong master key would fail every decryption later; refuse at start instead. */
export async function verifyMasterKey(store: Store, cipher: Cipher): Promise<void> {
  // First start: write the check value. Two processes starting together both try; one wins and the
  // other checks against what the winner wrote (with the same key, it matches).
  await store.db
    .insertInto('settings')
    .values({ key: CHECK_KEY, value: cipher.encrypt('otpilot', CHECK_KEY) })
    .onConflict((oc) => oc.column('key').doNothing())
    .execute();
  const row = await store.db
    .selectFrom('settings')
    .select('value')
    .where('key', '=', CHECK_KEY)
    .executeTakeFirstOrThrow();
  try {
    cipher.decrypt(row.value, CHECK_KEY);
  } catch {
    throw new Error('the master key does not match this store (OTPILOT_MASTER_KEY or data/master.key was changed)');
  }
}

/** Opens the store named by the config and brings its schema up to date. */
export async function openStore(config: Config): Promise<Store> {
  const store = config.databaseUrl
    ? await openPostgresStore(config.databaseUrl, {
        poolSize: config.pgPoolSize,
        connectTimeoutMs: config.pgConnectTimeoutMs,
      })
    : openSqliteStore(join(config.dataDir, 'otpilot.db'));
  try {
    await migrateToLatest(store);
  } catch (error) {
    await store.close();
    throw error;
  }
  return store;
}

export function openCipher(config: Config): Cipher {
  const master = loadMasterKey({
    envValue: config.masterKey ?? undefined,
    dataDir: config.dataDir,
    embedded: !config.databaseUrl,
  });
  if (!master.ok) throw new Error(master.reason);
  return makeCipher(master.key);
}

export function loopbackHost(host: string): string {
  if (host === '0.0.0.0' || host === '') return '127.0.0.1';
  if (host === '::') return '[::1]';
  return host.includes(':') ? `[${host}]` : host;
}

/** Why `role` cannot run with `config` (null: it can). */
export function roleRefusal(role: Role, config: Config): string | null {
  if (role === 'all') return null;
  if (!config.databaseUrl)
    return `--role ${role} needs DATABASE_URL (PostgreSQL): the embedded SQLite store serves one process`;
  if (config.sandbox && !config.sandboxUrl)
    return 'with several processes the sandbox bank runs on its own: start `otpilot sandbox-bank` and set OTPILOT_SANDBOX_URL, or set OTPILOT_SANDBOX=false';
  return null;
}

/**
 * First-start secrets go to a terminal when there is one. Otherwise stdout is a log stream (systemd,
 * containers, collectors) and must not carry them: they go to a 0600 file in the data folder instead,
 * and only its path is logged.
 */
export function showBootstrap(result: BootstrapResult, baseUrl: string, dataDir: string, log: Logger): void {
  const text = `${formatBootstrap(result, baseUrl)}\n`;
  if (process.stdout.isTTY) {
    process.stdout.write(text);
    return;
  }
  // With PostgreSQL nothing else creates the data folder.
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const file = join(dataDir, 'first-start-secrets.txt');
  // A file left by an earlier start whose bootstrap did not commit is replaced (and kept private).
  writeFileSync(file, text, { mode: 0o600 });
  chmodSync(file, 0o600);
  log.warn({ file }, 'first-start secrets (admin password, API key) written to this file: read it, then delete it');
}

/**
 * One step of a shutdown, bounded: one that hangs (a stuck bank call, a database that stopped
 * answering) is logged and left behind, so the process still ends and its supervisor can restart it.
 * A step that took more than half its bound is logged as slow.
 */
export function shutdownStep(log: Logger, boundMs: number) {
  return async (name: string, work: () => unknown): Promise<void> => {
    const started = performance.now();
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => {
      timer = setTimeout(() => resolve('late'), boundMs);
    });
    try {
      const outcome = await Promise.race([Promise.resolve().then(work), late]);
      if (outcome === 'late')
        log.warn({ step: name, ms: boundMs }, 'shutdown step still running at its bound; going on');
      else if (performance.now() - started > boundMs / 2)
        log.warn({ step: name, ms: Math.round(performance.now() - started) }, 'slow shutdown step');
    } catch (error) {
      log.error({ err: error, step: name }, 'shutdown step failed; going on');
    } finally {
      clearTimeout(timer);
    }
  };
}
