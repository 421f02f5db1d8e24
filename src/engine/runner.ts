import type { Logger } from 'pino';
import { findConfig } from '../accounts/repo.js';
import { availableCodeSources } from '../automation/code-sources.js';
import { answerWithTotp, parseTotpSecret } from '../automation/totp.js';
import type { ConnectorRegistry } from '../connectors/registry.js';
import type { BankSession, DateRange, LoginContext } from '../connectors/sdk.js';
import { ConnectorError, ENGINE_STOP, isConnectorError, isEngineStop } from '../connectors/sdk.js';
import { withSessionRef } from '../connectors/session-ref.js';
import type { Tx, UnitOfWork } from '../events/outbox.js';
import { topics } from '../events/topics.js';
import { ingestMovements, upsertBankAccounts } from '../movements/ingest.js';
import { failSession, type SessionOutcome, type Stage, succeedSession } from '../sessions/transitions.js';
import type { SessionsTable } from '../store/schema.js';
import { blameOverload, type Saturation } from './admission.js';
import { requestApproval } from './approval.js';
import { type HandoffDeps, type HandoffSession, requestCode } from './handoff.js';
import type { KeptSession, SessionKeeper } from './keeper.js';
import { type AbortCause, classifyFailure } from './outcome.js';
import { makeTrustStore, noteTrustChallenged } from './trust.js';
import { ConnectorTimeout, makeWatchdog, type WatchdogLimits } from './watchdog.js';

/** The hand-off's dependencies plus the connectors, this worker's lease id, the watchdog's limits and a logger. */
export interface RunnerDeps extends Omit<HandoffDeps, 'callLimitMs'> {
  registry: ConnectorRegistry;
  /** This process's persistent bank sessions. */
  keeper: SessionKeeper;
  /** This worker's lease owner id. */
  owner: string;
  log: Logger;
  limits: WatchdogLimits;
  /** This process's saturation: a bank failure while it was saturated is ours (`overloaded`). */
  saturation?: Pick<Saturation, 'saturatedSince'>;
  /** Told when the login starts (+1) and stops (−1) waiting for a person (the pool's active count). */
  waiting?: (delta: 1 | -1) => void;
}

const DAY = 86_400_000;
/** First scrape reads this far back; later ones re-read a week before the last success to catch late bookings. */
const FIRST_RANGE_DAYS = 90;
const OVERLAP_DAYS = 7;
/** A bank session's `close` gets at most this long, ms. */
const CLOSE_LIMIT_MS = 15_000;

function dateOnly(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

/**
 * Runs one claimed session to its end: login (pausing for codes), read ledgers, balances, identity
 * and movements, store them, and record the outcome with its events. Every connector call runs
 * under the watchdog. Never throws for bank trouble.
 */
export async function runSession(
  deps: RunnerDeps,
  session: SessionsTable,
  shutdown: AbortSignal,
  leaseLost: AbortSignal = new AbortController().signal,
): Promise<void> {
  const { db, clock, cipher, log } = deps;
  const began = performance.now();
  const stages: Stage[] = [];
  const stage = (name: string) => {
    // The runner and the connector may both name a stage; keep one entry for it.
    if (stages[stages.length - 1]?.name !== name) stages.push({ name, at: new Date(clock()).toISOString() });
  };
  const controller = new AbortController();
  let abortCause: AbortCause | null = null;
  let abortError: Error | null = null;
  const abort = (cause: AbortCause, error?: Error) => {
    if (abortCause) return;
    abortCause = cause;
    abortError = error ?? null;
    // Branded, so a connector can tell the engine's stop from a bank error (`isEngineStop`).
    controller.abort(error ?? Object.assign(new Error(`session stopped: ${cause}`), { [ENGINE_STOP]: true }));
  };
  const onShutdown = () => abort('shutdown');
  const onLeaseLost = () => abort('lease_lost');
  shutdown.addEventListener('abort', onShutdown, { once: true });
  leaseLost.addEventListener('abort', onLeaseLost, { once: true });
  const unsubscribe = deps.bus.subscribe(topics.session(session.id), () => abort('cancel'));
  const guard = makeWatchdog(deps.limits, (error) => abort('timeout', error), controller.signal);
  // A login waiting for a person costs nothing to run: the pool does not count it as active.
  const watchdog: typeof guard = {
    ...guard,
    paused: async (wait) => {
      deps.waiting?.(1);
      try {
        return await guard.paused(wait);
      } finally {
        deps.waiting?.(-1);
      }
    },
  };
  let bankSession: BankSession | null = null;
  /** The persistent session this scrape reuses (taken from the keeper), if any. */
  let kept: KeptSession | null = null;
  let keep: { connectorId: string; since: number; keepAliveMs: number } | null = null;
  let fatalThreshold = 3;
  let succeeded = false;
  let failureEvent: 'login_failed' | 'scrape_failed' = 'login_failed';

  try {
    const account = await db.selectFrom('accounts').selectAll().where('id', '=', session.account_id).executeTakeFirst();
    const config = await findConfig(db, session.account_id);
    const bank = account
      ? await db.selectFrom('banks').selectAll().where('id', '=', account.bank_id).executeTakeFirst()
      : undefined;
    if (!account || !config || !bank)
      throw new ConnectorError('connector_broken', 'the account or its bank is missing');
    fatalThreshold = config.fatal_threshold;
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
    // A bank that still asks despite stored trust: recorded once per login (trust that stopped working).
    let challengeNoted = account.trust_enc === null;
    const challenged = async () => {
      if (challengeNoted) return;
      challengeNoted = true;
      log.warn({ session_id: session.id, account_id: account.id }, 'the bank asked for a code despite stored trust');
      await noteTrustChallenged(deps, account.id);
    };
    const totpSecret = () =>
      config.totp_secret_enc ? cipher.decrypt(config.totp_secret_enc, `${account.id}:totp_secret`) : null;

    const handoff: HandoffSession = {
      orgId: session.org_id,
      accountId: session.account_id,
      sessionId: session.id,
      owner: deps.owner,
      stages: () => JSON.stringify(stages),
      loginMode: config.login_mode,
      assistTimeoutMs: config.assist_timeout_seconds * 1000,
      signal: controller.signal,
      stage,
      resendAfterMs: config.resend_after_seconds === null ? null : config.resend_after_seconds * 1000,
      maxResends: config.max_resends,
      onNoCodeSource: config.on_no_code_source,
      hasCodeSource: async (channel) =>
        (await availableCodeSources(db, { orgId: session.org_id, otpPhone: config.otp_phone, channel, now: clock() }))
          .length > 0,
      hasTotp: async () => {
        const secret = totpSecret();
        return secret !== null && parseTotpSecret(secret).ok;
      },
      answerWithTotp: async (request) => {
        const secret = totpSecret();
        if (!secret) return false;
        return answerWithTotp(deps, {
          secret,
          orgId: session.org_id,
          accountId: session.account_id,
          requestId: request.id,
          signal: controller.signal,
        });
      },
      watchdog,
    };
    const handoffDeps: HandoffDeps = { ...deps, callLimitMs: deps.limits.callMs };
    const ctx: LoginContext = {
      credentials,
      requestCode: async (request, tryCode, options) => {
        await challenged();
        return requestCode(handoffDeps, handoff, request, tryCode, options);
      },
      requestApproval: async (request, check, options) => {
        await challenged();
        return requestApproval(handoffDeps, handoff, request, check, options);
      },
      trust: makeTrustStore({ db, transact: deps.transact, cipher, accountId: account.id }),
      signal: controller.signal,
      log: {
        debug: (msg, data) => log.debug({ ...data, session_id: session.id }, msg),
        info: (msg, data) => log.info({ ...data, session_id: session.id }, msg),
        warn: (msg, data) => log.warn({ ...data, session_id: session.id }, msg),
        error: (msg, data) => log.error({ ...data, session_id: session.id }, msg),
      },
      stage,
    };
    // Built-in connectors (the browser runtime) record what they ran under the session.
    withSessionRef(ctx, { sessionId: session.id, orgId: session.org_id, accountId: account.id });

    const now = clock();
    const from = account.last_success_at ? account.last_success_at - OVERLAP_DAYS * DAY : now - FIRST_RANGE_DAYS * DAY;
    const range: DateRange = { from: dateOnly(from), to: dateOnly(now) };
    const fetchAll = async (opened: BankSession) => {
      stage('fetch');
      const [ledgers, balances, identity] = await watchdog.call('data', () =>
        Promise.all([opened.bankAccounts(), opened.balances(), opened.identity()]),
      );
      const movements = await watchdog.call('data', () => opened.movements(range));
      return { ledgers, balances, identity, movements };
    };
    const login = async () => {
      failureEvent = 'login_failed';
      stage('login');
      const since = clock();
      bankSession = await watchdog.call('login', () => connector.login(ctx));
      failureEvent = 'scrape_failed';
      if (config.session_type === 'persistent')
        keep = { connectorId: connector.id, since, keepAliveMs: config.keep_alive_seconds * 1000 };
      return fetchAll(bankSession);
    };

    let fetched: Awaited<ReturnType<typeof fetchAll>> | null = null;
    kept = config.session_type === 'persistent' ? deps.keeper.take(account.id) : null;
    if (kept && kept.connectorId !== connector.id) {
      await deps.keeper.release(account.id, kept, 'the bank changed connector');
      kept = null;
    }
    if (kept) {
      // A persistent session still open from an earlier scrape: no login, so no code.
      const reused: KeptSession = kept;
      stage('reuse_session');
      failureEvent = 'scrape_failed';
      bankSession = reused.session;
      keep = { connectorId: reused.connectorId, since: reused.since, keepAliveMs: config.keep_alive_seconds * 1000 };
      try {
        fetched = await fetchAll(reused.session);
      } catch (error) {
        if (controller.signal.aborted || isEngineStop(error)) throw error;
        // The bank ended it since the last keepAlive: log in afresh, in this same scrape.
        log.info({ session_id: session.id }, 'the kept bank session no longer works; logging in again');
        kept = null;
        bankSession = null;
        await deps.keeper.release(account.id, reused, 'a data call failed');
      }
    }
    fetched ??= await login();
    const { ledgers, balances, identity, movements } = fetched;
    controller.signal.throwIfAborted();
    stage('store');
    succeeded = await finishSuccess(deps, session, stages, async (trx, uow, at) => {
      const ids = await upsertBankAccounts(trx, {
        orgId: session.org_id,
        accountId: account.id,
        accounts: ledgers,
        balances,
        now: at,
      });
      await trx
        .updateTable('accounts')
        .set({ identity: JSON.stringify(identity) })
        .where('id', '=', account.id)
        .execute();
      return ingestMovements(trx, uow, {
        orgId: session.org_id,
        accountId: account.id,
        sessionId: session.id,
        bankAccountIds: ids,
        movements,
        silent: config.silent_ingestion === 1,
        now: at,
      });
    });
  } catch (error) {
    const thrown = abortError ?? error;
    // The session's own time limit is spent mostly waiting for a person, not on our load: running it
    // again at once (what `overloaded` does) would only ask the person for another code.
    const sessionLimit = thrown instanceof ConnectorTimeout && thrown.call === 'session';
    const outcome = blameOverload(
      classifyFailure(thrown, abortCause),
      !sessionLimit && (deps.saturation?.saturatedSince(began) ?? false),
    );
    if (outcome.state === 'failed' && outcome.category === 'connector_broken' && !isConnectorError(error)) {
      log.error(
        { session_id: session.id, err: { name: (error as Error)?.name, stack: (error as Error)?.stack } },
        'connector failed unexpectedly',
      );
    }
    await finishFailure(deps, session, stages, outcome, failureEvent, fatalThreshold);
  } finally {
    unsubscribe();
    shutdown.removeEventListener('abort', onShutdown);
    leaseLost.removeEventListener('abort', onLeaseLost);
    watchdog.dispose();
    await settleBankSession(deps, {
      accountId: session.account_id,
      opened: bankSession as BankSession | null,
      kept: kept as KeptSession | null,
      keep: succeeded ? (keep as typeof keep) : null,
      abort: () => controller.abort(Object.assign(new Error('bank session closed'), { [ENGINE_STOP]: true })),
    });
  }
}

/**
 * After the scrape: a persistent account's session (new or reused) is kept open when the scrape
 * succeeded and the keeper has room; a reused one that failed is released; anything else is closed.
 */
async function settleBankSession(
  deps: RunnerDeps,
  s: {
    accountId: string;
    opened: BankSession | null;
    kept: KeptSession | null;
    keep: { connectorId: string; since: number; keepAliveMs: number } | null;
    abort: () => void;
  },
): Promise<void> {
  const { opened, kept, keep } = s;
  if (!opened) return;
  if (keep) {
    const entry: KeptSession = kept ?? {
      session: opened,
      connectorId: keep.connectorId,
      since: keep.since,
      abort: s.abort,
    };
    if (await deps.keeper.keep(s.accountId, entry, keep.keepAliveMs).catch(() => false)) return;
  }
  if (kept) return deps.keeper.release(s.accountId, kept, keep ? 'no room to keep it' : 'the scrape failed');
  await makeWatchdog({ sessionMs: CLOSE_LIMIT_MS, callMs: CLOSE_LIMIT_MS }, () => {})
    .call('close', () => opened.close())
    .catch(() => {});
}

type FinalWork = (trx: Tx, uow: UnitOfWork, at: number) => Promise<number>;

/**
 * Stores what the login fetched and ends the session, guarded by the lease: a worker that lost it
 * writes nothing (false).
 */
async function finishSuccess(
  deps: RunnerDeps,
  session: SessionsTable,
  stages: Stage[],
  work: FinalWork,
): Promise<boolean> {
  return deps
    .transact(async (trx, uow) => {
      const at = deps.clock();
      const added = await work(trx, uow, at);
      const ended = await succeedSession(trx, uow, { session, owner: deps.owner, stages, movementsNew: added, at });
      if (!ended) throw new LeaseLost(session.id);
      return true;
    })
    .catch((error: unknown) => {
      if (!(error instanceof LeaseLost)) throw error;
      deps.log.warn({ session_id: session.id }, 'lease lost before the session ended; result dropped');
      return false;
    });
}

class LeaseLost extends Error {
  constructor(sessionId: string) {
    super(`lease lost for ${sessionId}`);
  }
}

/**
 * Records a failed or cancelled session (see `failSession`). `owner` null: recovery, which ends only
 * a session whose lease expired.
 */
export async function finishFailure(
  deps: Pick<RunnerDeps, 'transact' | 'clock'> & { owner: string | null },
  session: Pick<SessionsTable, 'id' | 'org_id' | 'account_id'>,
  stages: Stage[],
  outcome: SessionOutcome,
  failureEvent: 'login_failed' | 'scrape_failed',
  fatalThreshold: number,
): Promise<void> {
  await deps.transact((trx, uow) =>
    failSession(trx, uow, {
      session,
      owner: deps.owner,
      stages,
      outcome,
      failureEvent,
      fatalThreshold,
      at: deps.clock(),
    }),
  );
}
