import { randomBytes } from 'node:crypto';
import { existsSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { systemClock } from '../core/time.js';
import { makeKeysService } from '../keys/service.js';
import { createOrganization, emailTaken, listOrganizations, resetPassword } from '../orgs/service.js';
import { makeCipher } from '../security/cipher.js';
import { parseMasterKey } from '../security/master-key.js';
import { rotateMasterKey } from '../security/rotation.js';
import { openCipher, openStore } from '../startup.js';
import type { Store } from '../store/db.js';
import { config, fail, organization } from './support.js';

/*
 * Operator commands that work on the store directly (no server needed): the way back in when nobody
 * can sign in, keys without the dashboard, organizations and the master key. Same on both stores.
 */

const print = (text: string) => process.stdout.write(`${text}\n`);

async function withStore<T>(work: (store: Store) => Promise<T>): Promise<T> {
  const store = await openStore(config());
  try {
    return await work(store);
  } finally {
    await store.close();
  }
}

export async function keysList(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: { org: { type: 'string' }, json: { type: 'boolean', default: false } },
  });
  await withStore(async (store) => {
    const orgId = await organization(store.db, values.org);
    const keys = await makeKeysService({ db: store.db, clock: systemClock }).list(orgId);
    if (values.json) return print(JSON.stringify({ data: keys }));
    if (keys.length === 0) return print('no API keys');
    for (const key of keys)
      print(
        [
          key.id,
          `otpk_${key.prefix}_…`,
          key.revoked_at ? `revoked ${key.revoked_at}` : 'active',
          key.name,
          key.scopes.join(','),
          key.account_ids ? `accounts ${key.account_ids.join(',')}` : 'every account',
          `last used ${key.last_used_at ?? 'never'}`,
        ].join('  '),
      );
  });
}

export async function keysRevoke(args: string[]): Promise<void> {
  const { positionals } = parseArgs({ args, allowPositionals: true, options: {} });
  const id = positionals[0];
  if (!id || positionals.length !== 1) fail('usage: otpilot keys revoke <key_…>');
  await withStore(async (store) => {
    const row = await store.db
      .selectFrom('api_keys')
      .select(['org_id', 'revoked_at'])
      .where('id', '=', id)
      .executeTakeFirst();
    if (!row) fail(`no API key ${id}`);
    if (row.revoked_at !== null) return print(`${id} was already revoked`);
    await makeKeysService({ db: store.db, clock: systemClock }).revoke(row.org_id, id);
    // Other processes cache a verified key for up to 5 s.
    print(`revoked ${id} (refused everywhere within 5 seconds)`);
  });
}

export async function usersResetPassword(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      email: { type: 'string' },
      password: { type: 'string' },
      'clear-2fa': { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
    },
  });
  if (!values.email) fail('--email is required');
  if (values.password !== undefined && values.password.length < 10) fail('--password must have at least 10 characters');
  await withStore(async (store) => {
    const reset = await resetPassword(store.db, {
      clock: systemClock,
      email: values.email!,
      ...(values.password !== undefined ? { password: values.password } : {}),
      clearTwoFactor: values['clear-2fa'],
    });
    if (!reset.ok) fail(reset.message);
    const generated = values.password === undefined ? reset.value.password : null;
    if (values.json)
      return print(JSON.stringify({ id: reset.value.userId, org_id: reset.value.orgId, password: generated }));
    print(`password of ${values.email} reset; their dashboard sessions are signed out`);
    if (values['clear-2fa']) print('two-step sign-in turned off: they set it up again after signing in');
    if (generated) print(`\nnew password (shown once): ${generated}`);
  });
}

export async function orgsCreate(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      name: { type: 'string' },
      'admin-email': { type: 'string' },
      'admin-password': { type: 'string' },
      json: { type: 'boolean', default: false },
    },
  });
  const name = values.name?.trim();
  if (!name || name.length > 200) fail('--name is required (at most 200 characters)');
  const email = values['admin-email']?.trim().toLowerCase();
  if (!email || !/^[^@\s]+@[^@\s]+$/.test(email)) fail('--admin-email must be an email address');
  const password = values['admin-password'];
  if (password !== undefined && password.length < 10) fail('--admin-password must have at least 10 characters');
  await withStore(async (store) => {
    if (await emailTaken(store.db, email))
      fail('that email is already in use (addresses are unique across organizations)');
    const created = await store.db.transaction().execute((trx) =>
      createOrganization(trx, {
        clock: systemClock,
        keys: makeKeysService({ db: trx, clock: systemClock }),
        name,
        adminEmail: email,
        ...(password !== undefined ? { adminPassword: password } : {}),
        actor: { type: 'system', id: null },
      }),
    );
    const shownPassword = password === undefined ? created.adminPassword : null;
    if (values.json)
      return print(
        JSON.stringify({
          id: created.orgId,
          name,
          admin_email: email,
          admin_password: shownPassword,
          api_key: created.apiKey,
        }),
      );
    print(`created ${created.orgId} (${name}); shown once:\n`);
    print(`  Admin user   ${email}`);
    if (shownPassword) print(`  Password     ${shownPassword}`);
    print(`  API key      ${created.apiKey}   (every scope of this organization)`);
  });
}

export async function orgsList(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { json: { type: 'boolean', default: false } } });
  await withStore(async (store) => {
    const orgs = await listOrganizations(store.db);
    if (values.json) return print(JSON.stringify({ data: orgs }));
    for (const org of orgs) print(`${org.id}  ${org.name}  ${org.users} users  ${org.accounts} accounts`);
  });
}

/**
 * `otpilot master-key rotate`: the current key comes from the usual place (OTPILOT_MASTER_KEY or
 * master.key), the new one from OTPILOT_NEW_MASTER_KEY or is generated. With a key file, the file is
 * replaced after the store commits; with the variable, the operator sets the new value everywhere.
 */
export async function rotateKey(): Promise<void> {
  const settings = config();
  const keyFile = join(settings.dataDir, 'master.key');
  if (!settings.masterKey && !existsSync(keyFile))
    fail(`no master key: set OTPILOT_MASTER_KEY or keep ${keyFile} (rotation never creates the current key)`);
  const newText = process.env.OTPILOT_NEW_MASTER_KEY;
  const newKey = newText ? parseMasterKey(newText) : randomBytes(32);
  if (!newKey) fail('OTPILOT_NEW_MASTER_KEY must be 32 bytes as 64 hex characters or base64');
  const current = openCipher(settings);
  const next = makeCipher(newKey);
  const fromFile = !settings.masterKey;
  // Written before the store changes, so the new key exists somewhere whatever happens next.
  const pending = `${keyFile}.new`;
  if (fromFile) writeFileSync(pending, `${newKey.toString('hex')}\n`, { mode: 0o600 });
  await withStore(async (store) => {
    const rotated = await rotateMasterKey(store.db, current, next);
    if (!rotated.ok) {
      if (fromFile) rmSync(pending, { force: true });
      process.stderr.write(`otpilot: ${rotated.reason}; nothing was changed\n`);
      process.exit(1);
    }
    if (fromFile) renameSync(pending, keyFile);
    const total = Object.values(rotated.counts).reduce((a, b) => a + b, 0);
    print(`re-encrypted ${total} secrets with the new master key`);
    if (fromFile) print(`${keyFile} now holds the new key; the old one no longer opens this store`);
    else if (newText)
      print('set OTPILOT_MASTER_KEY to the value of OTPILOT_NEW_MASTER_KEY on every process before starting');
    else
      print(
        `set OTPILOT_MASTER_KEY on every process before starting; the new key (shown once):\n${newKey.toString('hex')}`,
      );
  });
}
