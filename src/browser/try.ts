import { setTimeout as delay } from 'node:timers/promises';
import { makeMemoryBus } from '../events/bus.js';
import { makeTransact } from '../events/outbox.js';
import { queueLogin } from '../sessions/transitions.js';
import type { Store } from '../store/db.js';
import type { ScriptCatalog } from './scripts.js';

/** How a tried script's login ended, with what the run kept (docs/browser-scripts.md "Trying a version"). */
export interface TryOutcome {
  session_id: string;
  script_version: string;
  state: string;
  failure_category: string | null;
  failure_message: string | null;
  /** Where the failed page was (its screenshot and HTML: `GET /v1/sessions/{id}/browser`). */
  url: string | null;
}

export type TryResult = { ok: true; outcome: TryOutcome } | { ok: false; message: string };

/**
 * `otpilot scripts try`: stores the script as a draft (or reuses that very version), pins one account
 * to it, queues a login that a running otpilot worker picks up, waits for its end and restores the
 * account's pin. Works from the store alone, so the server's worker finds the session by its poll.
 */
export async function tryScript(deps: {
  store: Store;
  catalog: ScriptCatalog;
  bankId: string;
  version: string;
  source: string;
  accountId: string;
  /** Longest wait for the login's end, ms. */
  timeoutMs: number;
}): Promise<TryResult> {
  const { store, catalog, bankId, version, accountId } = deps;
  const db = store.db;
  const account = await db
    .selectFrom('accounts')
    .select(['id', 'org_id', 'bank_id'])
    .where('id', '=', accountId)
    .executeTakeFirst();
  if (!account || account.bank_id !== bankId)
    return { ok: false, message: `bank ${bankId} has no account ${accountId}` };
  const existing = await catalog.read(bankId, version);
  if (existing.ok) {
    if (existing.value.source !== deps.source) {
      return { ok: false, message: `version ${version} exists with other code; bump the version` };
    }
  } else {
    const created = await catalog.create(bankId, deps.source);
    if (!created.ok) return { ok: false, message: created.message };
  }
  const previous = await db
    .selectFrom('bank_script_pins')
    .select('version')
    .where('account_id', '=', accountId)
    .executeTakeFirst();
  const pinned = await catalog.pin(bankId, accountId, version);
  if (!pinned.ok) return { ok: false, message: pinned.message };
  try {
    const transact = makeTransact({ db, dialect: store.dialect, bus: makeMemoryBus(), clock: Date.now });
    const login = await transact((trx, uow) =>
      queueLogin(trx, uow, { orgId: account.org_id, accountId, trigger: 'manual', now: Date.now(), join: false }),
    );
    if (login === null) return { ok: false, message: 'the account already has a login running; try again after it' };
    const deadline = Date.now() + deps.timeoutMs;
    for (;;) {
      const session = await db
        .selectFrom('sessions')
        .select(['state', 'failure_category', 'failure_message'])
        .where('id', '=', login.sessionId)
        .executeTakeFirstOrThrow();
      if (session.state === 'succeeded' || session.state === 'failed' || session.state === 'cancelled') {
        const run = await db
          .selectFrom('browser_runs')
          .select(['script_version', 'url'])
          .where('session_id', '=', login.sessionId)
          .executeTakeFirst();
        return {
          ok: true,
          outcome: {
            session_id: login.sessionId,
            script_version: run?.script_version ?? version,
            state: session.state,
            failure_category: session.failure_category,
            failure_message: session.failure_message,
            url: run?.url ?? null,
          },
        };
      }
      if (Date.now() > deadline) {
        return {
          ok: false,
          message: `the login ${login.sessionId} did not end in time (is an otpilot worker running?)`,
        };
      }
      // Another process runs the login; the store is all this command shares with it.
      await delay(500);
    }
  } finally {
    await catalog.pin(bankId, accountId, previous?.version ?? null);
  }
}
