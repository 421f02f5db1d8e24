import type { Static } from 'typebox';
import type { BankSchema } from '../accounts/schemas.js';
import type { ConnectorRegistry } from '../connectors/registry.js';
import type { FieldSpec } from '../connectors/sdk.js';
import type { Db } from '../store/db.js';
import type { BanksTable } from '../store/schema.js';

/** A bank as the API lists it. */
export type BankView = Static<typeof BankSchema>;

export function bankView(row: BanksTable): BankView {
  return {
    id: row.id,
    name: row.name,
    connector: row.connector,
    country: row.country,
    version: row.script_version,
    script_version: row.script_version,
    credential_fields: JSON.parse(row.credential_fields) as FieldSpec[],
  };
}

/** Keeps one bank row per connector (built in or plugin), with its current name, version and credential fields. */
export async function syncBuiltinBanks(db: Db, registry: ConnectorRegistry, now: number): Promise<void> {
  for (const connector of registry.all()) {
    const fields = JSON.stringify(connector.credential_fields);
    await db
      .insertInto('banks')
      .values({
        id: connector.id,
        name: connector.name,
        connector: connector.id,
        country: null,
        script_version: connector.version,
        credential_fields: fields,
        created_at: now,
      })
      .onConflict((oc) =>
        oc
          .column('id')
          .doUpdateSet({ name: connector.name, script_version: connector.version, credential_fields: fields }),
      )
      .execute();
  }
}

export async function listBanks(db: Db): Promise<BankView[]> {
  const rows = await db.selectFrom('banks').selectAll().orderBy('id').execute();
  return rows.map(bankView);
}

export async function findBank(db: Db, id: string): Promise<BankView | null> {
  const row = await db.selectFrom('banks').selectAll().where('id', '=', id).executeTakeFirst();
  return row ? bankView(row) : null;
}
