import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { urlWithSchema } from '../store/db.js';
import { benchClaims } from './pg-claims.js';
import { benchHandoff } from './pg-handoff.js';
import { BANK_SLOW_MS, type Context, log, run, SCHEDULER_TICK_MS, sleep } from './pg-shared.js';
import { CLI, Processes, READY } from './processes.js';

/**
 * The PostgreSQL benchmarks (`BENCH_DATABASE_URL` or `DATABASE_URL`): otpilot as it is deployed on
 * PostgreSQL, as OS processes (`node dist/cli.js …`) sharing a fresh schema that is dropped at the end.
 *
 * - `pg_handoff_ms`: a code posted to an API process reaching the connector in a worker (pg-handoff.ts).
 * - `pg_claims_per_s`: four worker processes taking a backlog of queued logins that appears at once.
 */

export async function runPostgresBenchmarks(
  databaseUrl: string,
  phases: { handoff: boolean; claims: boolean } = { handoff: true, claims: true },
): Promise<Record<string, unknown>> {
  const tag = randomBytes(4).toString('hex');
  const schema = `bench_${tag}`;
  const procs = new Processes();
  const admin = new pg.Client({ connectionString: databaseUrl });
  admin.on('error', (error) => log(`pg: admin connection: ${error.message}`));
  await admin.connect();
  const dataDir = mkdtempSync(join(tmpdir(), 'otpilot-bench-pg-'));
  let created = false;
  let db: pg.Pool | null = null;
  const dropSchema = async () => {
    if (!created) return;
    try {
      await admin.query(`drop schema if exists "${schema}" cascade`);
      created = false;
    } catch (error) {
      log(`pg: could not drop schema ${schema}: ${error instanceof Error ? error.message : String(error)}`);
    }
  };
  // Ctrl-C or a kill during the run: the children go too, then the schema (best effort, 5 s at most).
  const interrupted = (signal: NodeJS.Signals) => {
    log(`pg: ${signal}: stopping the children and dropping schema ${schema}`);
    procs.killNow();
    rmSync(dataDir, { recursive: true, force: true });
    setTimeout(() => process.exit(130), 5000).unref();
    void sleep(200)
      .then(dropSchema)
      .finally(() => process.exit(130));
  };
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);
  try {
    const server = (await admin.query<{ server_version: string }>('show server_version')).rows[0]!.server_version;
    await admin.query(`create schema "${schema}"`);
    created = true;
    log(`pg: schema ${schema} on PostgreSQL ${server}`);
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      PORT: '0',
      HOST: '127.0.0.1',
      LOG_LEVEL: 'info',
      DATABASE_URL: urlWithSchema(databaseUrl, schema),
      OTPILOT_MASTER_KEY: randomBytes(32).toString('hex'),
      OTPILOT_DATA_DIR: dataDir,
      OTPILOT_SANDBOX: 'false',
      OTPILOT_ALLOW_PRIVATE_URLS: 'true',
      OTPILOT_CODE_RATE_LIMIT: '1000000',
      OTPILOT_WORKER_CONCURRENCY: '1000',
      OTPILOT_BANK_CONCURRENCY: '',
    };
    const bank = await procs.launch(
      'sandbox bank',
      ['sandbox-bank', '--port', '0', '--host', '127.0.0.1', '--slow-ms', String(BANK_SLOW_MS)],
      env,
      /sandbox bank at (http:\S+)/,
    );
    env.OTPILOT_SANDBOX_URL = bank.url;
    await run(process.execPath, [CLI, 'migrate'], { env, timeout: 60_000 });
    const api = await procs.launch('API', ['start', '--role', 'api'], env, READY);
    const secrets = readFileSync(join(dataDir, 'first-start-secrets.txt'), 'utf8');
    const key = /API key\s+(otpk_\S+)/.exec(secrets)?.[1];
    if (!key) throw new Error('no API key in first-start-secrets.txt');
    db = new pg.Pool({ connectionString: env.DATABASE_URL, max: 2 });
    // An idle connection that drops is replaced on next use; unheard, its error would end the run.
    db.on('error', () => {});
    const ctx: Context = { procs, env, db, bank, api, key, tag };
    const result: Record<string, unknown> = { pg_server: server };
    if (phases.handoff) Object.assign(result, await benchHandoff(ctx));
    if (phases.claims)
      Object.assign(
        result,
        await benchClaims(ctx, {
          ...env,
          OTPILOT_SCHEDULER_TICK_MS: String(SCHEDULER_TICK_MS),
          // 500 logins a worker (the default) need more than 10 connections when they all end at once;
          // 4 × (16 + 3) plus the API's stays under PostgreSQL's default max_connections of 100.
          OTPILOT_WORKER_CONCURRENCY: '500',
          OTPILOT_PG_POOL_SIZE: '16',
        }),
      );
    return result;
  } finally {
    process.removeListener('SIGINT', interrupted);
    process.removeListener('SIGTERM', interrupted);
    await procs.stopAll();
    await db?.end().catch(() => {});
    await dropSchema();
    await admin.end().catch(() => {});
    rmSync(dataDir, { recursive: true, force: true });
  }
}
