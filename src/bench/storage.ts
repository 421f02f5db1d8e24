import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import pg from 'pg';
import { loadConfig } from '../config.js';
import type { Movement } from '../connectors/sdk.js';
import { newId } from '../core/ids.js';
import { ingestMovements, upsertBankAccounts } from '../movements/ingest.js';
import { accountsOf, movementAt } from '../sandbox-bank/movements.js';
import { type RunningServer, startServer } from '../server.js';
import { urlWithSchema } from '../store/db.js';
import { round } from './stats.js';

/**
 * `bytes_per_movement`: what one stored movement costs on disk, all in — its row and index entries
 * in `movements`, and its `bank_movement` event's row and index entries in `events`. N sandbox-bank
 * movements go in through the real ingestion path (`ingestMovements` in a `transact`, 540 a
 * transaction: one first login's 90 days), then the growth of each table and index is divided by N.
 * SQLite: pages per table and index from `dbstat` (whole pages, free space in them included), the
 * file's growth as a cross-check. PostgreSQL: `pg_relation_size` / `pg_indexes_size` deltas (TOAST
 * counted with the row).
 */

/** Movements per scrape: the sandbox bank's 90 days on two ledgers (3 slots a day). */
const PER_SCRAPE = 540;
const log = (message: string) => process.stderr.write(`bench: ${message}\n`);

/** Bytes per movement, split by where they live. */
export interface StorageSplit {
  movement_row: number;
  movement_indexes: number;
  event_row: number;
  event_indexes: number;
}

type Sizes = Record<keyof StorageSplit, number> & {
  /** Bytes of each table and index (the detail behind the split). */
  relations: Record<string, number>;
};

const total = (s: Sizes) => s.movement_row + s.movement_indexes + s.event_row + s.event_indexes;
const perMovement = (before: Sizes, after: Sizes, n: number): StorageSplit => ({
  movement_row: round((after.movement_row - before.movement_row) / n, 1),
  movement_indexes: round((after.movement_indexes - before.movement_indexes) / n, 1),
  event_row: round((after.event_row - before.event_row) / n, 1),
  event_indexes: round((after.event_indexes - before.event_indexes) / n, 1),
});
const perRelation = (before: Sizes, after: Sizes, n: number): Record<string, number> =>
  Object.fromEntries(
    Object.entries(after.relations).map(([name, bytes]) => [
      name,
      round((bytes - (before.relations[name] ?? 0)) / n, 1),
    ]),
  );

/** Ingests `n` sandbox movements on the server's tour account, PER_SCRAPE per transaction. */
async function ingest(server: RunningServer, n: number): Promise<void> {
  const db = server.store.db;
  const accountId = server.bootstrap?.sandboxAccountId;
  if (!accountId) throw new Error('storage bench: expected a fresh store with a tour account');
  const { org_id: orgId } = await db
    .selectFrom('accounts')
    .select('org_id')
    .where('id', '=', accountId)
    .executeTakeFirstOrThrow();
  const username = 'storage';
  const ledgers = accountsOf(username);
  const now = Date.now();
  const bankAccountIds = await server.transact((trx) =>
    upsertBankAccounts(trx, { orgId, accountId, accounts: ledgers, balances: [], now }),
  );
  const all: Movement[] = [];
  for (let slot = 0; all.length < n; slot++)
    for (const ledger of ledgers) {
      if (all.length >= n) break;
      all.push({ ...movementAt(username, ledger, slot), bank_account_id: ledger.id });
    }
  let inserted = 0;
  for (let start = 0; start < n; start += PER_SCRAPE) {
    inserted += await server.transact((trx, uow) =>
      ingestMovements(trx, uow, {
        orgId,
        accountId,
        // Each batch a login of its own, as the runner passes it.
        sessionId: newId('ses'),
        bankAccountIds,
        movements: all.slice(start, start + PER_SCRAPE),
        silent: false,
        now: Date.now(),
      }),
    );
  }
  if (inserted !== n) throw new Error(`storage bench: ${inserted} of ${n} movements stored`);
}

async function sqliteSizes(server: RunningServer): Promise<Sizes> {
  const { rows } = await sql<{ name: string; tbl: string; kind: string; bytes: number }>`
    select m.name as name, m.tbl_name as tbl, m.type as kind, sum(s.pgsize) as bytes
    from dbstat s join sqlite_master m on m.name = s.name
    where m.tbl_name in ('movements', 'events')
    group by m.name
  `.execute(server.store.db);
  const of = (tbl: string, kind: string) =>
    rows.filter((r) => r.tbl === tbl && r.kind === kind).reduce((sum, r) => sum + Number(r.bytes), 0);
  return {
    movement_row: of('movements', 'table'),
    movement_indexes: of('movements', 'index'),
    event_row: of('events', 'table'),
    event_indexes: of('events', 'index'),
    relations: Object.fromEntries(rows.map((r) => [r.name, Number(r.bytes)])),
  };
}

async function benchSqlite(n: number) {
  const dataDir = mkdtempSync(join(tmpdir(), 'otpilot-bench-storage-'));
  const loaded = loadConfig({ OTPILOT_DATA_DIR: dataDir, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'silent' });
  if (!loaded.ok) throw new Error(loaded.errors.join('; '));
  const server = await startServer({ config: loaded.config, printBootstrap: () => {} });
  try {
    const file = join(dataDir, 'otpilot.db');
    const fileSize = async () => {
      await sql`pragma wal_checkpoint(TRUNCATE)`.execute(server.store.db);
      return statSync(file).size;
    };
    const before = await sqliteSizes(server);
    const fileBefore = await fileSize();
    log(`storage: ${n} movements on SQLite`);
    await ingest(server, n);
    const after = await sqliteSizes(server);
    const fileAfter = await fileSize();
    return {
      split: perMovement(before, after, n),
      relations: perRelation(before, after, n),
      total: (total(after) - total(before)) / n,
      file: (fileAfter - fileBefore) / n,
    };
  } finally {
    await server.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

async function pgSizes(client: pg.Client, schema: string): Promise<Sizes> {
  const { rows } = await client.query<{ tbl: string; heap: string; indexes: string; all: string }>(
    `select t as tbl,
            pg_relation_size(format('%I.%I', $1::text, t)) as heap,
            pg_indexes_size(format('%I.%I', $1::text, t)) as indexes,
            pg_total_relation_size(format('%I.%I', $1::text, t)) as all
     from unnest(array['movements', 'events']) as t`,
    [schema],
  );
  const of = (tbl: string) => rows.find((r) => r.tbl === tbl)!;
  const m = of('movements');
  const e = of('events');
  const indexes = await client.query<{ name: string; bytes: string }>(
    `select indexrelname as name, pg_relation_size(indexrelid) as bytes
     from pg_stat_all_indexes where schemaname = $1 and relname in ('movements', 'events')`,
    [schema],
  );
  return {
    relations: {
      movements: Number(m.all) - Number(m.indexes),
      events: Number(e.all) - Number(e.indexes),
      ...Object.fromEntries(indexes.rows.map((r) => [r.name, Number(r.bytes)])),
    },
    // TOAST (long values) and the visibility and free-space maps count with the row.
    movement_row: Number(m.all) - Number(m.indexes),
    movement_indexes: Number(m.indexes),
    event_row: Number(e.all) - Number(e.indexes),
    event_indexes: Number(e.indexes),
  };
}

async function benchPostgres(n: number, databaseUrl: string) {
  const schema = `bench_storage_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: databaseUrl });
  await admin.connect();
  const dataDir = mkdtempSync(join(tmpdir(), 'otpilot-bench-storage-'));
  let server: RunningServer | null = null;
  try {
    await admin.query(`create schema "${schema}"`);
    const loaded = loadConfig({
      OTPILOT_DATA_DIR: dataDir,
      PORT: '0',
      HOST: '127.0.0.1',
      LOG_LEVEL: 'silent',
      DATABASE_URL: urlWithSchema(databaseUrl, schema),
      OTPILOT_MASTER_KEY: randomBytes(32).toString('hex'),
    });
    if (!loaded.ok) throw new Error(loaded.errors.join('; '));
    server = await startServer({ config: loaded.config, printBootstrap: () => {} });
    const before = await pgSizes(admin, schema);
    log(`storage: ${n} movements on PostgreSQL (schema ${schema})`);
    await ingest(server, n);
    const after = await pgSizes(admin, schema);
    return {
      split: perMovement(before, after, n),
      relations: perRelation(before, after, n),
      total: (total(after) - total(before)) / n,
    };
  } finally {
    await server?.close();
    await admin.query(`drop schema if exists "${schema}" cascade`).catch(() => {});
    await admin.end();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/**
 * The `bytes_per_movement` figures: `sqlite` (and `pg` with a database URL) all in per movement,
 * `events_share` the part of SQLite's that is the event's, the splits, each table and index per
 * movement (`*_relations`), and `sqlite_file` the file's growth per movement.
 */
export async function benchStorage(n: number, databaseUrl: string | null): Promise<Record<string, unknown>> {
  const lite = await benchSqlite(n);
  const figures: Record<string, unknown> = {
    movements: n,
    sqlite: round(lite.total, 1),
    events_share: round((lite.split.event_row + lite.split.event_indexes) / lite.total, 3),
    sqlite_split: lite.split,
    sqlite_relations: lite.relations,
    sqlite_file: round(lite.file, 1),
  };
  if (databaseUrl) {
    const pgFigures = await benchPostgres(n, databaseUrl);
    figures.pg = round(pgFigures.total, 1);
    figures.pg_events_share = round((pgFigures.split.event_row + pgFigures.split.event_indexes) / pgFigures.total, 3);
    figures.pg_split = pgFigures.split;
    figures.pg_relations = pgFigures.relations;
  }
  return { bytes_per_movement: figures };
}
