import { deleteRequestsOf } from '../assistance/requests.js';
import { recordAudit } from '../audit/repo.js';
import { findBank } from '../banks/repo.js';
import type { ErrorDetail } from '../core/errors.js';
import { newId } from '../core/ids.js';
import { fail, ok, type Result } from '../core/result.js';
import { nextRunAt, parseSchedule } from '../core/schedule.js';
import type { Clock } from '../core/time.js';
import type { Transact } from '../events/outbox.js';
import { type Principal, refuseIfRestricted } from '../keys/principal.js';
import type { Cipher } from '../security/cipher.js';
import { deleteSessionsOf } from '../sessions/transitions.js';
import type { Db } from '../store/db.js';
import type { UrlCheck } from '../webhooks/url-safety.js';
import { accountFor } from './access.js';
import { applyConfig, type ConfigInput, type ConfigView, configView, DEFAULT_CONFIG } from './config.js';
import { type AccountRow, type AccountView, accountView, findAccount, findConfig } from './repo.js';

export interface CreateAccountInput {
  bank_id: string;
  name: string;
  credentials?: Record<string, string>;
  config?: Omit<ConfigInput, 'credentials'>;
}

export interface AccountsService {
  create(principal: Principal, input: CreateAccountInput): Promise<Result<AccountView>>;
  rename(principal: Principal, accountId: string, name: string): Promise<Result<AccountView>>;
  remove(principal: Principal, accountId: string, confirmationName: string): Promise<Result<null>>;
  getConfig(principal: Principal, accountId: string): Promise<Result<ConfigView>>;
  putConfig(principal: Principal, accountId: string, input: ConfigInput): Promise<Result<ConfigView>>;
  /** Forgets the bank trust stored for the account (the next login asks for a code again). */
  forgetTrust(principal: Principal, accountId: string): Promise<Result<AccountView>>;
}

export interface AccountsDeps {
  db: Db;
  transact: Transact;
  cipher: Cipher;
  clock: Clock;
  /** [0, 1): schedule jitter. */
  random: () => number;
  /** Save-time check of notification and webhook URLs (resolvable, public unless allowed). */
  checkUrl(url: string): Promise<UrlCheck>;
}

/** Refuses unreachable or private notification and webhook URLs before anything is stored. */
async function checkUrls(
  input: ConfigInput,
  checkUrl: AccountsDeps['checkUrl'],
  prefix: string,
): Promise<ErrorDetail[]> {
  const details: ErrorDetail[] = [];
  for (const key of ['notification_endpoint_url', 'webhook_url'] as const) {
    const value = input[key];
    if (typeof value !== 'string') continue;
    const check = await checkUrl(value);
    if (!check.ok) details.push({ path: `${prefix}/${key}`, message: check.reason });
  }
  return details;
}

/** When the account runs next under `schedule` (null: never on its own). */
export function scheduleNext(schedule: string | null, from: number, random: number): number | null {
  if (!schedule) return null;
  const parsed = parseSchedule(schedule);
  return parsed.ok ? nextRunAt(parsed.schedule, from, random) : null;
}

/** One audit entry of an account change made by `principal`. */
function auditAccount(
  trx: Parameters<typeof recordAudit>[0],
  principal: Principal,
  accountId: string,
  action: string,
  details: Record<string, unknown>,
  at: number,
) {
  return recordAudit(
    trx,
    { orgId: principal.orgId, actor: principal.actor, action, accountId, targetId: accountId, outcome: 'ok', details },
    at,
  );
}

/** The account read back after a write: another request may have deleted it meanwhile. */
function viewOf(row: AccountRow | undefined): Result<AccountView> {
  return row ? ok(accountView(row)) : fail('NOT_FOUND', 'account not found');
}

export function makeAccountsService(deps: AccountsDeps): AccountsService {
  const { db, transact, cipher, clock } = deps;

  async function credentialNames(accountId: string, credentialsEnc: string | null): Promise<string[] | null> {
    if (!credentialsEnc) return null;
    return Object.keys(
      JSON.parse(cipher.decrypt(credentialsEnc, `${accountId}:credentials`)) as Record<string, string>,
    );
  }

  async function readConfig(accountId: string): Promise<ConfigView> {
    const [row, account] = await Promise.all([
      findConfig(db, accountId),
      db.selectFrom('accounts').select('credentials_enc').where('id', '=', accountId).executeTakeFirstOrThrow(),
    ]);
    if (!row) throw new Error(`account ${accountId} has no config row`);
    return configView(row, await credentialNames(accountId, account.credentials_enc));
  }

  return {
    async create(principal, input) {
      const refused = refuseIfRestricted(principal, 'create accounts');
      if (refused) return refused;
      const bank = await findBank(db, input.bank_id);
      if (!bank) return fail('VALIDATION_FAILED', 'unknown bank', [{ path: '/bank_id', message: 'no such bank' }]);
      const urlProblems = await checkUrls(input.config ?? {}, deps.checkUrl, '/config');
      if (urlProblems.length > 0) return fail('VALIDATION_FAILED', 'the account is invalid', urlProblems);
      const now = clock();
      const id = newId('acc', now);
      const applied = applyConfig(
        { ...input.config, ...(input.credentials ? { credentials: input.credentials } : {}) },
        { accountId: id, fields: bank.credential_fields, cipher },
      );
      if (!applied.ok) {
        const details = applied.details.map((d) => ({
          ...d,
          path: d.path.startsWith('/credentials') ? d.path : `/config${d.path}`,
        }));
        return fail('VALIDATION_FAILED', 'the account is invalid', details);
      }
      const config = { ...DEFAULT_CONFIG, ...applied.update };
      await transact(async (trx) => {
        await trx
          .insertInto('accounts')
          .values({
            id,
            org_id: principal.orgId,
            bank_id: bank.id,
            name: input.name.trim(),
            credentials_enc: applied.credentialsEnc ?? null,
            trust_enc: null,
            identity: null,
            blocked_at: null,
            blocked_reason: null,
            consecutive_failures: 0,
            backoff_level: 0,
            trust_expires_at: null,
            trust_warned_at: null,
            trust_challenged_at: null,
            live_session_owner: null,
            live_session_since: null,
            live_session_until: null,
            last_success_at: null,
            last_run_at: null,
            next_run_at: scheduleNext(config.schedule ?? null, now, deps.random()),
            created_at: now,
            updated_at: now,
          })
          .execute();
        await trx
          .insertInto('account_config')
          .values({
            account_id: id,
            org_id: principal.orgId,
            otp_phone: null,
            totp_secret_enc: null,
            notification_endpoint_url: null,
            notification_auth_type: null,
            notification_auth_token_enc: null,
            notification_events: null,
            webhook_url: null,
            webhook_auth_type: null,
            webhook_auth_token_enc: null,
            webhook_extra_fields: null,
            silent_ingestion: 0,
            max_resends: 2,
            keep_alive_seconds: 300,
            sms_sender: null,
            sms_code_pattern: null,
            on_no_code_source: 'wait',
            ...config,
            updated_at: now,
          })
          .execute();
        await recordAudit(
          trx,
          {
            orgId: principal.orgId,
            actor: principal.actor,
            action: 'account.create',
            accountId: id,
            targetId: id,
            outcome: 'ok',
          },
          now,
        );
      });
      return viewOf(await findAccount(db, principal.orgId, id));
    },

    async rename(principal, accountId, name) {
      const found = await accountFor(db, principal, accountId);
      if (!found.ok) return found;
      const now = clock();
      await transact(async (trx) => {
        await trx
          .updateTable('accounts')
          .set({ name: name.trim(), updated_at: now })
          .where('id', '=', accountId)
          .execute();
        await auditAccount(
          trx,
          principal,
          accountId,
          'account.rename',
          { from: found.value.name, to: name.trim() },
          now,
        );
      });
      return viewOf(await findAccount(db, principal.orgId, accountId));
    },

    async remove(principal, accountId, confirmationName) {
      const found = await accountFor(db, principal, accountId);
      if (!found.ok) return found;
      if (found.value.name !== confirmationName) {
        return fail('VALIDATION_FAILED', 'confirmation_name does not match the account name', [
          { path: '/confirmation_name', message: 'must equal the account name' },
        ]);
      }
      if (found.value.session_state !== null) {
        return fail('CONFLICT', 'a session is active on this account; cancel it first');
      }
      await transact(async (trx, uow) => {
        // Children first: SQLite enforces the foreign keys, and the order keeps PostgreSQL happy too.
        await trx.deleteFrom('movements').where('account_id', '=', accountId).execute();
        await trx.deleteFrom('bank_accounts').where('account_id', '=', accountId).execute();
        await deleteRequestsOf(trx, accountId);
        await deleteSessionsOf(trx, accountId);
        await trx.deleteFrom('account_config').where('account_id', '=', accountId).execute();
        await trx.deleteFrom('accounts').where('id', '=', accountId).execute();
        await auditAccount(trx, principal, accountId, 'account.delete', { name: found.value.name }, clock());
        uow.touch(accountId);
      });
      return ok(null);
    },

    async forgetTrust(principal, accountId) {
      const found = await accountFor(db, principal, accountId);
      if (!found.ok) return found;
      const now = clock();
      await transact(async (trx, uow) => {
        await trx
          .updateTable('accounts')
          .set({ trust_enc: null, trust_expires_at: null, trust_warned_at: null, updated_at: now })
          .where('id', '=', accountId)
          .execute();
        await auditAccount(
          trx,
          principal,
          accountId,
          'account.trust.forget',
          { had_trust: found.value.trust_enc !== null },
          now,
        );
        uow.touch(accountId);
      });
      return viewOf(await findAccount(db, principal.orgId, accountId));
    },

    async getConfig(principal, accountId) {
      const found = await accountFor(db, principal, accountId);
      if (!found.ok) return found;
      return ok(await readConfig(accountId));
    },

    async putConfig(principal, accountId, input) {
      const found = await accountFor(db, principal, accountId);
      if (!found.ok) return found;
      const bank = await findBank(db, found.value.bank_id);
      if (!bank) throw new Error(`bank ${found.value.bank_id} of ${accountId} is missing`);
      const urlProblems = await checkUrls(input, deps.checkUrl, '');
      if (urlProblems.length > 0) return fail('VALIDATION_FAILED', 'the config is invalid', urlProblems);
      const applied = applyConfig(input, { accountId, fields: bank.credential_fields, cipher });
      if (!applied.ok) return fail('VALIDATION_FAILED', 'the config is invalid', applied.details);
      const now = clock();
      await transact(async (trx, uow) => {
        if (Object.keys(applied.update).length > 0) {
          await trx
            .updateTable('account_config')
            .set({ ...applied.update, updated_at: now })
            .where('account_id', '=', accountId)
            .execute();
        }
        const accountUpdate: { updated_at: number; credentials_enc?: string | null; next_run_at?: number | null } = {
          updated_at: now,
        };
        if (applied.credentialsEnc !== undefined) accountUpdate.credentials_enc = applied.credentialsEnc;
        if (applied.scheduleChanged)
          accountUpdate.next_run_at = scheduleNext(applied.update.schedule ?? null, now, deps.random());
        await trx.updateTable('accounts').set(accountUpdate).where('id', '=', accountId).execute();
        await auditAccount(trx, principal, accountId, 'account.config.update', { fields: applied.changed }, now);
        uow.touch(accountId);
      });
      return ok(await readConfig(accountId));
    },
  };
}
