import { createHash } from 'node:crypto';
import { sql } from 'kysely';
import type { FieldSpec } from '../connectors/sdk.js';
import { newId } from '../core/ids.js';
import { fail, ok, type Result } from '../core/result.js';
import { iso } from '../core/time.js';
import type { Db } from '../store/db.js';
import type { BankScriptsTable, ScriptState } from '../store/schema-browser.js';
import { inspectScript } from './inspect.js';

/** A script version as the API shows it (`source` only when one version is read). */
export interface ScriptView {
  bank_id: string;
  version: string;
  state: ScriptState;
  sha256: string;
  credential_fields: FieldSpec[];
  created_at: string;
  updated_at: string;
  /** Accounts pinned to this version. */
  pinned_accounts: string[];
  source?: string;
}

/** The script one login runs. */
export interface ChosenScript {
  version: string;
  source: string;
  pinned: boolean;
}

/** What an operator may do to a version, and from which states (docs/browser-scripts.md "Life of a script"). */
export type ScriptAction = 'review' | 'promote' | 'deprecate';

const FROM: Record<ScriptAction, ScriptState[]> = {
  review: ['draft'],
  promote: ['review', 'deprecated'],
  deprecate: ['draft', 'review'],
};

function view(row: BankScriptsTable, pins: string[], withSource: boolean): ScriptView {
  return {
    bank_id: row.bank_id,
    version: row.version,
    state: row.state,
    sha256: row.sha256,
    credential_fields: JSON.parse(row.credential_fields) as FieldSpec[],
    created_at: iso(row.created_at),
    updated_at: iso(row.updated_at),
    pinned_accounts: pins,
    ...(withSource ? { source: row.source } : {}),
  };
}

export interface ScriptCatalog {
  list(bankId: string): Promise<Result<ScriptView[]>>;
  read(bankId: string, version: string): Promise<Result<ScriptView>>;
  /** Stores a new version as a `draft` after checking its shape (it loads in a throwaway worker). */
  create(bankId: string, source: string): Promise<Result<ScriptView>>;
  change(bankId: string, version: string, action: ScriptAction): Promise<Result<ScriptView>>;
  /** Pins an account to a version (null removes the pin). */
  pin(
    bankId: string,
    accountId: string,
    version: string | null,
  ): Promise<Result<{ account_id: string; version: string | null }>>;
  /** The version a login of this account runs: its pin, else the bank's active one. */
  choose(bankId: string, accountId: string | null): Promise<ChosenScript | null>;
  /** Makes `source` the active script of a bank that has none yet (the reference script at first start). */
  seed(bankId: string, source: string): Promise<void>;
}

export function makeScriptCatalog(deps: { db: Db; clock: () => number }): ScriptCatalog {
  const { db, clock } = deps;

  const bankExists = async (bankId: string) =>
    (await db.selectFrom('banks').select('id').where('id', '=', bankId).executeTakeFirst()) !== undefined;

  const pinsOf = async (bankId: string, version?: string) => {
    let q = db.selectFrom('bank_script_pins').select(['account_id', 'version']).where('bank_id', '=', bankId);
    if (version !== undefined) q = q.where('version', '=', version);
    return q.orderBy('account_id').execute();
  };

  const row = (bankId: string, version: string) =>
    db
      .selectFrom('bank_scripts')
      .selectAll()
      .where('bank_id', '=', bankId)
      .where('version', '=', version)
      .executeTakeFirst();

  const insert = async (
    bankId: string,
    source: string,
    state: ScriptState,
    meta: { version: string; fields: unknown },
  ) => {
    const now = clock();
    await db
      .insertInto('bank_scripts')
      .values({
        id: newId('bsc', now),
        bank_id: bankId,
        version: meta.version,
        state,
        source,
        sha256: createHash('sha256').update(source).digest('hex'),
        credential_fields: JSON.stringify(meta.fields),
        created_at: now,
        updated_at: now,
      })
      .execute();
  };

  const readOne = async (bankId: string, version: string): Promise<Result<ScriptView>> => {
    const found = await row(bankId, version);
    if (!found) return fail('NOT_FOUND', `bank ${bankId} has no script version ${version}`);
    const pins = await pinsOf(bankId, version);
    return ok(
      view(
        found,
        pins.map((p) => p.account_id),
        true,
      ),
    );
  };

  return {
    async list(bankId) {
      if (!(await bankExists(bankId))) return fail('NOT_FOUND', 'bank not found');
      const rows = await db
        .selectFrom('bank_scripts')
        .selectAll()
        .where('bank_id', '=', bankId)
        .orderBy('created_at', 'desc')
        .execute();
      const pins = await pinsOf(bankId);
      return ok(
        rows.map((r) =>
          view(
            r,
            pins.filter((p) => p.version === r.version).map((p) => p.account_id),
            false,
          ),
        ),
      );
    },
    read: readOne,
    async create(bankId, source) {
      const bank = await db
        .selectFrom('banks')
        .select(['id', 'credential_fields'])
        .where('id', '=', bankId)
        .executeTakeFirst();
      if (!bank) return fail('NOT_FOUND', 'bank not found');
      const inspected = await inspectScript(source);
      if (!inspected.ok)
        return fail('VALIDATION_FAILED', inspected.problem, [{ path: '/source', message: inspected.problem }]);
      const { meta } = inspected;
      if (meta.bank !== bankId) {
        return fail('VALIDATION_FAILED', `the script is for bank ${meta.bank}, not ${bankId}`, [
          { path: '/source', message: 'bank does not match the URL' },
        ]);
      }
      // Accounts store the bank's fields; a script that asks for others could not log them in.
      const names = (fields: { name: string }[]) =>
        fields
          .map((f) => f.name)
          .sort()
          .join(',');
      if (names(meta.credentialFields) !== names(JSON.parse(bank.credential_fields) as { name: string }[])) {
        return fail('VALIDATION_FAILED', 'the script’s credential fields differ from the bank’s', [
          { path: '/source', message: 'credentialFields must name the bank’s credential fields' },
        ]);
      }
      if (await row(bankId, meta.version)) {
        return fail('CONFLICT', `version ${meta.version} exists; versions are immutable, bump the version`);
      }
      try {
        await insert(bankId, source, 'draft', { version: meta.version, fields: meta.credentialFields });
      } catch (error) {
        // Two pushes of the same version at once: the unique constraint decided.
        if (await row(bankId, meta.version)) return fail('CONFLICT', `version ${meta.version} exists`);
        throw error;
      }
      return readOne(bankId, meta.version);
    },
    async change(bankId, version, action) {
      const found = await row(bankId, version);
      if (!found) return fail('NOT_FOUND', `bank ${bankId} has no script version ${version}`);
      if (!FROM[action].includes(found.state)) {
        const hint = found.state === 'active' && action === 'deprecate' ? '; promote another version first' : '';
        return fail(
          'CONFLICT',
          `a ${found.state} script cannot be ${action === 'review' ? 'sent to review' : `${action}d`}${hint}`,
        );
      }
      const now = clock();
      const target: ScriptState = action === 'review' ? 'review' : action === 'promote' ? 'active' : 'deprecated';
      await db.transaction().execute(async (trx) => {
        if (target === 'active') {
          await trx
            .updateTable('bank_scripts')
            .set({ state: 'deprecated', updated_at: now })
            .where('bank_id', '=', bankId)
            .where('state', '=', 'active')
            .execute();
        }
        await trx
          .updateTable('bank_scripts')
          .set({ state: target, updated_at: now })
          .where('id', '=', found.id)
          .where('state', '=', found.state)
          .execute();
        // The bank shows the version its logins run by default.
        if (target === 'active') {
          await trx.updateTable('banks').set({ script_version: version }).where('id', '=', bankId).execute();
        }
      });
      return readOne(bankId, version);
    },
    async pin(bankId, accountId, version) {
      const account = await db
        .selectFrom('accounts')
        .select(['id', 'bank_id'])
        .where('id', '=', accountId)
        .executeTakeFirst();
      if (!account || account.bank_id !== bankId)
        return fail('NOT_FOUND', `bank ${bankId} has no account ${accountId}`);
      if (version === null) {
        await db.deleteFrom('bank_script_pins').where('account_id', '=', accountId).execute();
        return ok({ account_id: accountId, version: null });
      }
      const found = await row(bankId, version);
      if (!found) return fail('NOT_FOUND', `bank ${bankId} has no script version ${version}`);
      if (found.state === 'deprecated') return fail('CONFLICT', 'a deprecated script cannot be pinned');
      await db
        .insertInto('bank_script_pins')
        .values({ account_id: accountId, bank_id: bankId, version, created_at: clock() })
        .onConflict((oc) => oc.column('account_id').doUpdateSet({ bank_id: bankId, version, created_at: clock() }))
        .execute();
      return ok({ account_id: accountId, version });
    },
    async choose(bankId, accountId) {
      if (accountId !== null) {
        const pin = await db
          .selectFrom('bank_script_pins')
          .innerJoin('bank_scripts', (j) =>
            j
              .onRef('bank_scripts.bank_id', '=', 'bank_script_pins.bank_id')
              .onRef('bank_scripts.version', '=', 'bank_script_pins.version'),
          )
          .select(['bank_scripts.version', 'bank_scripts.source', 'bank_scripts.state'])
          .where('bank_script_pins.account_id', '=', accountId)
          .where('bank_script_pins.bank_id', '=', bankId)
          .executeTakeFirst();
        if (pin && pin.state !== 'deprecated') return { version: pin.version, source: pin.source, pinned: true };
      }
      const active = await db
        .selectFrom('bank_scripts')
        .select(['version', 'source'])
        .where('bank_id', '=', bankId)
        .where('state', '=', 'active')
        .executeTakeFirst();
      return active ? { ...active, pinned: false } : null;
    },
    async seed(bankId, source) {
      const any = await db
        .selectFrom('bank_scripts')
        .select(sql<number>`count(*)`.as('n'))
        .where('bank_id', '=', bankId)
        .executeTakeFirstOrThrow();
      if (Number(any.n) > 0) {
        // The start's bank sync wrote the connector's version; a script bank shows its active script's.
        const active = await db
          .selectFrom('bank_scripts')
          .select('version')
          .where('bank_id', '=', bankId)
          .where('state', '=', 'active')
          .executeTakeFirst();
        if (active)
          await db.updateTable('banks').set({ script_version: active.version }).where('id', '=', bankId).execute();
        return;
      }
      const inspected = await inspectScript(source);
      if (!inspected.ok) throw new Error(`the reference script of ${bankId} is broken: ${inspected.problem}`);
      try {
        await insert(bankId, source, 'active', {
          version: inspected.meta.version,
          fields: inspected.meta.credentialFields,
        });
        await db
          .updateTable('banks')
          .set({ script_version: inspected.meta.version })
          .where('id', '=', bankId)
          .execute();
      } catch (error) {
        // Another process seeded it first.
        if (!(await row(bankId, inspected.meta.version))) throw error;
      }
    },
  };
}
