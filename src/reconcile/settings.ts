import { accountFor } from '../accounts/access.js';
import { recordAudit } from '../audit/repo.js';
import { fail, ok, type Result } from '../core/result.js';
import type { Principal } from '../keys/principal.js';
import { type AccountMode, reconcileAccount, windowOf } from './repo.js';
import type { makeReconcileWorker, PollOutcome, WorkerDeps } from './worker.js';

export interface AccountSettings {
  account_id: string;
  mode: AccountMode;
  source_url: string | null;
  poll_seconds: number;
  polled_at: string | null;
  poll_error: string | null;
}

export interface OrgSettings {
  window_days_before: number;
  window_days_after: number | null;
}

/** Default pull interval, seconds. */
export const DEFAULT_POLL_SECONDS = 300;

/** Reconciliation's settings: the organization's matching window and each account's mode and source. */
export interface ReconcileSettings {
  orgSettings(principal: Principal): Promise<OrgSettings>;
  setOrgSettings(principal: Principal, settings: OrgSettings): Promise<OrgSettings>;
  accountSettings(principal: Principal, accountId: string): Promise<Result<AccountSettings>>;
  setAccountSettings(
    principal: Principal,
    accountId: string,
    settings: { mode: AccountMode; source_url: string | null; poll_seconds: number },
  ): Promise<Result<AccountSettings>>;
  /** Polls the account's source now. */
  pollNow(principal: Principal, accountId: string): Promise<Result<PollOutcome>>;
}

export function makeReconcileSettings(
  deps: WorkerDeps & {
    worker: Pick<ReturnType<typeof makeReconcileWorker>, 'poll'>;
    checkUrl: (url: string) => Promise<{ ok: true; url: URL } | { ok: false; reason: string }>;
  },
): ReconcileSettings {
  const { db, transact, clock, worker } = deps;

  function accountSettingsView(
    accountId: string,
    row:
      | {
          mode: string;
          source_url: string | null;
          poll_seconds: number;
          polled_at: number | null;
          poll_error: string | null;
        }
      | undefined,
  ): AccountSettings {
    return {
      account_id: accountId,
      mode: (row?.mode as AccountMode | undefined) ?? 'match',
      source_url: row?.source_url ?? null,
      poll_seconds: row?.poll_seconds ?? DEFAULT_POLL_SECONDS,
      polled_at: row?.polled_at ? new Date(Number(row.polled_at)).toISOString() : null,
      poll_error: row?.poll_error ?? null,
    };
  }

  return {
    async orgSettings(principal) {
      const window = await windowOf(db, principal.orgId);
      return { window_days_before: window.daysBefore, window_days_after: window.daysAfter };
    },

    async setOrgSettings(principal, settings) {
      const now = clock();
      await transact(async (trx) => {
        const values = {
          window_days_before: settings.window_days_before,
          window_days_after: settings.window_days_after,
          updated_at: now,
        };
        await trx
          .insertInto('reconcile_org_settings')
          .values({ org_id: principal.orgId, ...values })
          .onConflict((oc) => oc.column('org_id').doUpdateSet(values))
          .execute();
        await recordAudit(
          trx,
          {
            orgId: principal.orgId,
            actor: principal.actor,
            action: 'reconciliation.settings',
            outcome: 'ok',
            details: { ...settings },
          },
          now,
        );
      });
      return settings;
    },

    async accountSettings(principal, accountId) {
      const account = await accountFor(db, principal, accountId);
      if (!account.ok) return account;
      const row = await reconcileAccount(db, accountId);
      return ok(accountSettingsView(accountId, row));
    },

    async setAccountSettings(principal, accountId, settings) {
      const account = await accountFor(db, principal, accountId);
      if (!account.ok) return account;
      if (settings.source_url !== null) {
        const checked = await deps.checkUrl(settings.source_url);
        if (!checked.ok)
          return fail('VALIDATION_FAILED', `source_url ${checked.reason}`, [
            { path: '/source_url', message: checked.reason },
          ]);
      }
      const now = clock();
      await transact(async (trx) => {
        const values = {
          mode: settings.mode,
          source_url: settings.source_url,
          poll_seconds: settings.poll_seconds,
          poll_error: null,
          updated_at: now,
        };
        await trx
          .insertInto('reconcile_accounts')
          .values({ account_id: accountId, org_id: principal.orgId, polled_at: null, ...values })
          .onConflict((oc) => oc.column('account_id').doUpdateSet(values))
          .execute();
        await recordAudit(
          trx,
          {
            orgId: principal.orgId,
            actor: principal.actor,
            action: 'reconciliation.account',
            accountId,
            targetId: accountId,
            outcome: 'ok',
            details: { mode: settings.mode, pull: settings.source_url !== null },
          },
          now,
        );
      });
      const row = await reconcileAccount(db, accountId);
      return ok(accountSettingsView(accountId, row));
    },

    async pollNow(principal, accountId) {
      const account = await accountFor(db, principal, accountId);
      if (!account.ok) return account;
      const row = await reconcileAccount(db, accountId);
      if (!row?.source_url) return fail('CONFLICT', 'this account has no source_url to poll');
      return ok(await worker.poll(accountId, row.org_id, row.source_url));
    },
  };
}
