import { sql } from 'kysely';
import type { Logger } from 'pino';
import { findConfig } from '../accounts/repo.js';
import { availableCodeSources } from '../automation/code-sources.js';
import type { ConnectorRegistry } from '../connectors/registry.js';
import type { BankSession, DateRange, LoginContext } from '../connectors/sdk.js';
import { ConnectorError } from '../connectors/sdk.js';
import { countsTowardBlock, isFatal } from '../core/states.js';
import type { Tx, UnitOfWork } from '../events/outbox.js';
import { ingestMovements, upsertBankAccounts } from '../movements/ingest.js';
import { PENDING } from '../store/literals.js';
import type { SessionsTable } from '../store/schema.js';
import { requestApproval } from './approval.js';
import { type HandoffDeps, type HandoffSession, requestCode } from './handoff.js';
import { type AbortCause, classifyFailure, type SessionOutcome } from './outcome.js';

/** The hand-off's dependencies plus the connectors, this worker's lease id and a logger. */
export interface RunnerDeps extends HandoffDeps {
  registry: ConnectorRegistry;
  /** This worker's lease owner id. */
  owner: string;
  log: Logger;
}

const DAY = 86_400_000;
/** 2^6 = 64 times the schedule's interval at most (and never more than a day: see scheduler.ts). */
const MAX_BACKOFF_LEVEL = 6;
/** First scrape reads this far back; later ones re-read a week before the last success to catch late bookings. */
const FIRST_RANGE_DAYS = 90;
const OVERLAP_DAYS = 7;

function dateOnly(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

/**
 * Runs one claimed session to its end: login (pausing for codes), read ledgers, balances, identity
 * and movements, store them, and record the outcome with its events. Never throws for bank trouble.
 */
export async function runSession(
  deps: RunnerDeps,
  session: SessionsTable,
  shutdown: AbortSignal,
  leaseLost: AbortSignal = new AbortController().signal,
): Promise<void> {
  const { db, clock, cipher, log } = deps;
  const stages: { name: string; at: string }[] = [];
  const stage = (name: string) => {
    // The runner and the connector may both name a stage; keep one entry for it.
    if (stages[stages.length - 1]?.name !== name) stages.push({ name, at: new Date(clock()).toISOString() });
  };
  const controller = new AbortController();
  let abortCause: AbortCause | null = null;
  const abort = (cause: AbortCause) => {
    if (abortCause) return;
    abortCause = cause;
    controller.abort(new Error(`session stopped: ${cause}`));
  };
  const onShutdown = () => abort('shutdown');
  const onLeaseLost = () => abort('lease_lost');
  shutdown.addEventListener('abort', onShutdown, { once: true });
  leaseLost.addEventListener('abort', onLeaseLost, { once: true });
  const unsubscribe = deps.bus.subscribe(`session:${session.id}`, () => abort('cancel'));
  let bankSession: BankSession | null = null;

  try {
    const account = await db.selectFrom('accounts').selectAll().where('id', '=', session.account_id).executeTakeFirst();
    const config = await findConfig(db, session.account_id);
    const bank = account
      ? await db.selectFrom('banks').selectAll().where('id', '=', account.bank_id).executeTakeFirst()
      : undefined;
    if (!account || !config || !bank)
      throw new ConnectorError('connector_broken', 'the account or its bank is missing');
    const current = await db
      .selectFrom('sessions')
      .select('cancel_requested_at')
      .where('id', '=', session.id)
      .executeTakeFirst();
    if (current?.cancel_requested_at) abort('cancel');
    controller.signal.throwIfAborted();

    const connector = deps.registry.get(bank.connector);
    if (!connector) throw new ConnectorError('connector_broken', `no connector named ${bank.connector}`);
    if (!account.credentials_enc)
      throw new ConnectorError('invalid_credentials', 'no credentials are set for this account');
    const credentials = Object.freeze(
      JSON.parse(cipher.decrypt(account.credentials_enc, `${account.id}:credentials`)) as Record<string, string>,
    );

    const trustContext = `${account.id}:trust`;
    const handoff: HandoffSession = {
      orgId: session.org_id,
      accountId: session.account_id,
      sessionId: session.id,
      loginMode: config.login_mode,
      assistTimeoutMs: config.assist_timeout_seconds * 1000,
      signal: controller.signal,
      stage,
      stages: () => JSON.stringify(stages),
      owner: deps.owner,
      resendAfterMs: config.resend_after_seconds === null ? null : config.resend_after_seconds * 1000,
      maxResends: config.max_resends,
      onNoCodeSource: config.on_no_code_source,
      hasCodeSource: async (channel) =>
        (
          await availableCodeSources(db, {
            orgId: session.org_id,
            otpPhone: config.otp_phone,
            channel,
            now: clock(),
          })
        ).length > 0,
      totpSecret: async () =>
        config.totp_secret_enc ? cipher.decrypt(config.totp_secret_enc, `${account.id}:totp_secret`) : null,
    };
    const ctx: LoginContext = {
      credentials,
      requestCode: (request, tryCode, options) => requestCode(deps, handoff, request, tryCode, options),
      requestApproval: (request, check, options) => requestApproval(deps, handoff, request, check, options),
      trust: {
        async get() {
          const row = await db
            .selectFrom('accounts')
            .select('trust_enc')
            .where('id', '=', account.id)
            .executeTakeFirst();
          return row?.trust_enc ? cipher.decrypt(row.trust_enc, trustContext) : null;
        },
        async set(value, options = {}) {
          const expiresAt = value === null ? null : (options.expiresAt?.getTime() ?? null);
          await deps.transact(async (trx, uow) => {
            await trx
              .updateTable('accounts')
              .set({
                trust_enc: value === null ? null : cipher.encrypt(value, trustContext),
                trust_expires_at: Number.isFinite(expiresAt) ? expiresAt : null,
                // A new token gets its own warning.
                trust_warned_at: null,
              })
              .where('id', '=', account.id)
              .execute();
            uow.touch(account.id);
          });
        },
      },
      signal: controller.signal,
      log: {
        debug: (msg, data) => log.debug({ ...data, session_id: session.id }, msg),
        info: (msg, data) => log.info({ ...data, session_id: session.id }, msg),
        warn: (msg, data) => log.warn({ ...data, session_id: session.id }, msg),
      },
      stage,
    };

    stage('login');
    let loggedIn = false;
    try {
      bankSession = await connector.login(ctx);
      loggedIn = true;
      stage('fetch');
      const now = clock();
      const from = account.last_success_at
        ? account.last_success_at - OVERLAP_DAYS * DAY
        : now - FIRST_RANGE_DAYS * DAY;
      const range: DateRange = { from: dateOnly(from), to: dateOnly(now) };
      const [ledgers, balances, identity] = await Promise.all([
        bankSession.bankAccounts(),
        bankSession.balances(),
        bankSession.identity(),
      ]);
      const movements = await bankSession.movements(range);
      controller.signal.throwIfAborted();
      stage('store');
      await finish(deps, session, stages, { state: 'succeeded' }, async (trx, uow, at) => {
        const ids = await upsertBankAccounts(trx, {
          orgId: session.org_id,
          accountId: account.id,
          accounts: ledgers,
          balances,
          now: at,
        });
        const added = await ingestMovements(trx, uow, {
          orgId: session.org_id,
          accountId: account.id,
          sessionId: session.id,
          bankAccountIds: ids,
          movements,
          silent: config.silent_ingestion === 1,
          now: at,
        });
        await trx
          .updateTable('accounts')
          .set({
            backoff_level: 0,
            identity: JSON.stringify(identity),
            last_success_at: at,
            last_run_at: at,
            consecutive_failures: 0,
            updated_at: at,
          })
          .where('id', '=', account.id)
          .execute();
        return added;
      });
    } catch (error) {
      const outcome = classifyFailure(error, abortCause);
      if (outcome.state === 'failed' && outcome.category === 'connector_broken' && !(error instanceof ConnectorError)) {
        log.error(
          { session_id: session.id, err: { name: (error as Error)?.name, stack: (error as Error)?.stack } },
          'connector failed unexpectedly',
        );
      }
      await finishFailure(
        deps,
        session,
        stages,
        outcome,
        loggedIn ? 'scrape_failed' : 'login_failed',
        config.fatal_threshold,
      );
    }
  } catch (error) {
    // Failures before the login started (missing account, connector or credentials).
    await finishFailure(deps, session, stages, classifyFailure(error, abortCause), 'login_failed', 3);
  } finally {
    unsubscribe();
    shutdown.removeEventListener('abort', onShutdown);
    leaseLost.removeEventListener('abort', onLeaseLost);
    if (bankSession) await bankSession.close().catch(() => {});
  }
}

type FinalWork = (trx: Tx, uow: UnitOfWork, at: number) => Promise<number>;

/** Writes a session's end, guarded by the lease: a worker that lost its lease writes nothing. */
async function finish(
  deps: RunnerDeps,
  session: SessionsTable,
  stages: { name: string; at: string }[],
  end: { state: 'succeeded' },
  work: FinalWork,
): Promise<void> {
  await deps
    .transact(async (trx, uow) => {
      const at = deps.clock();
      const added = await work(trx, uow, at);
      const result = await trx
        .updateTable('sessions')
        .set({
          state: end.state,
          finished_at: at,
          stages: JSON.stringify([...stages, { name: 'succeeded', at: new Date(at).toISOString() }]),
          movements_new: added,
          lease_owner: null,
          lease_expires_at: null,
        })
        .where('id', '=', session.id)
        .where('lease_owner', '=', deps.owner)
        .executeTakeFirst();
      if (Number(result.numUpdatedRows) === 0) throw new LeaseLost(session.id);
      uow.emit({
        orgId: session.org_id,
        accountId: session.account_id,
        type: 'scrape_succeeded',
        data: { session_id: session.id, movements_new: added },
      });
    })
    .catch((error: unknown) => {
      if (error instanceof LeaseLost)
        deps.log.warn({ session_id: session.id }, 'lease lost before the session ended; result dropped');
      else throw error;
    });
}

class LeaseLost extends Error {
  constructor(sessionId: string) {
    super(`lease lost for ${sessionId}`);
  }
}

/**
 * Records a failed or cancelled session: closes its pending request, counts the failure, blocks the
 * account on a fatal failure or at the threshold, and emits the events; all in one transaction.
 */
export async function finishFailure(
  deps: Pick<RunnerDeps, 'transact' | 'clock' | 'log'> & { owner: string | null },
  session: Pick<SessionsTable, 'id' | 'org_id' | 'account_id'>,
  stages: { name: string; at: string }[],
  outcome: SessionOutcome,
  failureEvent: 'login_failed' | 'scrape_failed',
  fatalThreshold: number,
): Promise<void> {
  await deps.transact(async (trx, uow) => {
    const at = deps.clock();
    let update = trx
      .updateTable('sessions')
      .set({
        state: outcome.state,
        finished_at: at,
        failure_category: outcome.state === 'failed' ? outcome.category : null,
        failure_message: outcome.state === 'failed' ? outcome.message : outcome.reason,
        stages: JSON.stringify([...stages, { name: outcome.state, at: new Date(at).toISOString() }]),
        lease_owner: null,
        lease_expires_at: null,
      })
      .where('id', '=', session.id)
      .where('state', 'in', ['queued', 'running', 'awaiting_assistance']);
    // A worker ends only its own session; recovery (no owner) only one whose lease really expired.
    update = deps.owner ? update.where('lease_owner', '=', deps.owner) : update.where('lease_expires_at', '<', at);
    const result = await update.executeTakeFirst();
    if (Number(result.numUpdatedRows) === 0) return; // someone else already ended it (lease lost)

    const reason = outcome.state === 'cancelled' ? outcome.reason : outcome.category;
    const open = await trx
      .updateTable('assistance_requests')
      .set({ state: 'cancelled', resolved_at: at, resolution_reason: reason, code_enc: null, code_submitted_at: null })
      .where('session_id', '=', session.id)
      .where('state', '=', PENDING)
      .returning('id')
      .execute();
    for (const request of open) {
      uow.emit({
        orgId: session.org_id,
        accountId: session.account_id,
        type: 'assistance_cancelled',
        data: { id: request.id, reason },
      });
      uow.wake(`verdict:${request.id}`);
    }
    uow.touch(session.account_id);
    if (outcome.state === 'cancelled') return;

    uow.emit({
      orgId: session.org_id,
      accountId: session.account_id,
      type: failureEvent,
      data: { session_id: session.id, failure_category: outcome.category, message: outcome.message },
    });
    if (!countsTowardBlock(outcome.category)) {
      await trx
        .updateTable('accounts')
        .set({ last_run_at: at, updated_at: at })
        .where('id', '=', session.account_id)
        .execute();
      if (outcome.category === 'worker_lost' || outcome.category === 'shutdown') {
        // The login was cut short by us, not the bank: a scheduled account runs again now, on
        // whichever worker claims it; a manual one waits for its next trigger.
        await trx
          .updateTable('accounts')
          .set({ next_run_at: at })
          .where('id', '=', session.account_id)
          .where('next_run_at', 'is not', null)
          .where('next_run_at', '>', at)
          .execute();
      }
      return;
    }
    const account = await trx
      .updateTable('accounts')
      .set((eb) => ({
        consecutive_failures: eb('consecutive_failures', '+', 1),
        // A prompt nobody answered: space the next scheduled logins out (doubling, capped).
        ...(outcome.category === 'assistance_expired'
          ? {
              backoff_level: sql<number>`case when backoff_level < ${MAX_BACKOFF_LEVEL} then backoff_level + 1 else ${MAX_BACKOFF_LEVEL} end`,
            }
          : {}),
        last_run_at: at,
        updated_at: at,
      }))
      .where('id', '=', session.account_id)
      .returning(['consecutive_failures', 'blocked_at'])
      .executeTakeFirst();
    if (!account || account.blocked_at !== null) return;
    const block = isFatal(outcome.category) || account.consecutive_failures >= fatalThreshold;
    if (!block) return;
    const blockedReason = isFatal(outcome.category)
      ? outcome.category
      : `${account.consecutive_failures} consecutive failures (last: ${outcome.category})`;
    await trx
      .updateTable('accounts')
      .set({ blocked_at: at, blocked_reason: blockedReason })
      .where('id', '=', session.account_id)
      .execute();
    uow.emit({
      orgId: session.org_id,
      accountId: session.account_id,
      type: 'account_blocked',
      data: { reason: blockedReason, session_id: session.id },
    });
  });
}
