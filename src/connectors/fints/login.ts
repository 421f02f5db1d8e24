import type { FinTSClient, FinTSConfig } from 'lib-fints';
import { ConnectorError, isConnectorError, type LoginContext } from '../sdk.js';
import type { FintsCredentials } from './credentials.js';
import { call, describe, failureOf, has, WRONG_TAN } from './errors.js';
import { decodeTrust, encodeTrust, type FintsTrust } from './trust.js';

/** What the connector is configured with (instance settings, docs/configuration.md). */
export interface FintsSettings {
  /** The FinTS product registration id (HKVVB); null when the operator has not set one. */
  productId: string | null;
  /** The product version sent with it (at most 5 characters). */
  productVersion: string;
  /** Preferred TAN method when the account names none. */
  tanMethod: number | null;
  /** Preferred TAN medium when the account names none. */
  tanMedium: string | null;
}

type SyncResponse = Awaited<ReturnType<FinTSClient['synchronize']>>;
type TanMethod = FinTSConfig['availableTanMethods'][number];

/** The bank keeps counting wrong TANs; three lock most logins, so otpilot stops after two. */
const TAN_ATTEMPTS = 2;

/** What HITANS says about a method beyond lib-fints' TanMethod: the TAN's format. */
interface MethodParams {
  secFunc: number;
  format?: number;
  zkaMethod?: string;
  methodId?: string;
}

function methodParams(config: FinTSConfig, id: number): MethodParams | null {
  const params = config.getTransactionParameters<{ tanMethods?: MethodParams[] }>('HKTAN');
  return params?.tanMethods?.find((m) => m.secFunc === id) ?? null;
}

/** The preferred method when the bank offers it, else the bank's first; null when it offers none (one-step). */
function chooseMethod(ctx: LoginContext, available: TanMethod[], preferred: number | null): TanMethod | null {
  const wanted = preferred === null ? undefined : available.find((m) => m.id === preferred);
  if (preferred !== null && !wanted)
    ctx.log.warn('the bank does not offer the preferred TAN method; using its first', {
      preferred,
      offered: available.map((m) => m.id),
    });
  return wanted ?? available[0] ?? null;
}

/** A logged-in FinTS client: dialogs for balances and statements reuse its system id and TAN method. */
export interface FintsLogin {
  client: FinTSClient;
  config: FinTSConfig;
}

/** What one login works with: the credentials, the instance settings and the choices made from both. */
interface Plan {
  /** lib-fints, loaded on the first FinTS login (it is not needed to start the server). */
  lib: typeof import('lib-fints');
  creds: FintsCredentials;
  productId: string;
  productVersion: string;
  preferred: number | null;
  medium: string | null;
}

/**
 * Dialog init with the stored bank data, or a fresh synchronization (system id, BPD, UPD), then the TAN
 * step. When the bank does not take the stored data (it dropped the system id, say), the login forgets
 * it and synchronizes afresh, once.
 */
export async function fintsLogin(
  ctx: LoginContext,
  creds: FintsCredentials,
  settings: FintsSettings,
): Promise<FintsLogin> {
  const productId = settings.productId;
  if (!productId)
    throw new ConnectorError(
      'connector_broken',
      'OTPILOT_FINTS_PRODUCT_ID is not set: FinTS banks need a registered product id',
    );
  const plan: Plan = {
    lib: await import('lib-fints'),
    creds,
    productId,
    productVersion: settings.productVersion,
    preferred: creds.tanMethod ?? settings.tanMethod,
    medium: creds.tanMedium ?? settings.tanMedium,
  };
  ctx.stage('login');
  const stored = decodeTrust(creds, await ctx.trust.get());
  if (stored.discarded) ctx.log.info('discarding the stored FinTS bank data', { reason: stored.discarded });
  const config = stored.trust ? fromTrust(ctx, plan, stored.trust) : null;
  if (config) {
    try {
      return await initDialog(ctx, plan, config);
    } catch (err) {
      if (!isConnectorError(err) || err.kind !== 'connector_broken' || ctx.signal.aborted) throw err;
      ctx.log.info('the bank did not take the stored FinTS bank data; synchronizing afresh', { error: err.message });
      await ctx.trust.set(null);
    }
  }
  return initDialog(ctx, plan, await synchronize(ctx, plan));
}

/** A client configuration from the stored bank data, or null when lib-fints cannot use it. */
function fromTrust(ctx: LoginContext, plan: Plan, trust: FintsTrust): FinTSConfig | null {
  const { creds } = plan;
  try {
    const config = plan.lib.FinTSConfig.fromBankingInformation(
      plan.productId,
      plan.productVersion,
      trust.info,
      creds.userId,
      creds.pin,
      undefined,
      undefined,
      creds.customerId,
    );
    const method = chooseMethod(ctx, config.availableTanMethods, plan.preferred ?? trust.tanMethod);
    if (method) config.selectTanMethod(method.id);
    return config;
  } catch (err) {
    ctx.log.info('the stored FinTS bank data cannot be used; synchronizing afresh', { error: String(err) });
    return null;
  }
}

/** First contact: the bank's parameters and the TAN methods this user may use (3920), then the method chosen. */
async function synchronize(ctx: LoginContext, plan: Plan): Promise<FinTSConfig> {
  const { creds } = plan;
  const config = plan.lib.FinTSConfig.forFirstTimeUse(
    plan.productId,
    plan.productVersion,
    creds.url,
    creds.blz,
    creds.userId,
    creds.pin,
    creds.customerId,
  );
  const first = await call(ctx.signal, 'the synchronization', () => new plan.lib.FinTSClient(config).synchronize());
  if (!first.success) throw failureOf(first.bankAnswers, 'the synchronization');
  const method = chooseMethod(ctx, config.availableTanMethods, plan.preferred);
  if (method) config.selectTanMethod(method.id);
  return config;
}

/** The dialog init with a TAN method: the TAN step when the bank asks, then the bank data kept for next time. */
async function initDialog(ctx: LoginContext, plan: Plan, config: FinTSConfig): Promise<FintsLogin> {
  // lib-fints only accepts a medium the bank listed (HKTAB); banks that need one name it themselves.
  if (plan.medium !== null) config.tanMediaName = plan.medium;
  const client = new plan.lib.FinTSClient(config);
  const answer = await call(ctx.signal, 'the dialog initialization', () => client.synchronize());
  const done = answer.requiresTan ? await tanStep(ctx, client, config, answer) : answer;
  if (!done.success) throw failureOf(done.bankAnswers, 'the dialog initialization');
  if (!config.bankingInformation.upd)
    throw new ConnectorError('connector_broken', 'the bank sent no user parameter data (accounts)');
  await ctx.trust.set(
    encodeTrust(plan.creds, { info: config.bankingInformation, tanMethod: config.tanMethodId ?? null }),
  );
  ctx.stage('logged_in');
  return { client, config };
}

async function tanStep(
  ctx: LoginContext,
  client: FinTSClient,
  config: FinTSConfig,
  asked: SyncResponse,
): Promise<SyncResponse> {
  const reference = asked.tanReference;
  if (!reference) throw new ConnectorError('connector_broken', 'the bank asked for a TAN without an order reference');
  const method = config.selectedTanMethod;
  const prompt = asked.tanChallenge?.trim() || null;
  if (method?.isDecoupled) return approval(ctx, client, method, reference, prompt);
  ctx.stage('code');
  const params = method ? methodParams(config, method.id) : null;
  const sms = /sms|mobile/i.test(`${method?.name ?? ''} ${params?.zkaMethod ?? ''} ${params?.methodId ?? ''}`);
  const result = await ctx.requestCode<SyncResponse>(
    {
      // HITANS gives only a maximum length, and the descriptor's length is exact: leave it open.
      length: null,
      type: params?.format === 1 ? 'numeric' : 'alphanumeric',
      purpose: 'login',
      prompt,
      channel: sms ? 'sms' : null,
      max_attempts: TAN_ATTEMPTS,
    },
    async (tan) => {
      const res = await call(ctx.signal, 'the TAN', () => client.synchronizeWithTan(reference, tan));
      if (res.success && !res.requiresTan) return { outcome: 'accepted', value: res };
      if (!res.success && has(res.bankAnswers, WRONG_TAN) && !failureClosesDialog(res)) {
        ctx.log.info('the bank rejected a TAN', { answer: describe(res.bankAnswers) });
        return { outcome: 'rejected', reason: describe(res.bankAnswers) };
      }
      if (res.requiresTan) throw new ConnectorError('connector_broken', 'the bank asked for a second TAN');
      throw failureOf(res.bankAnswers, 'the TAN');
    },
  );
  if (!result) throw new ConnectorError('connector_broken', 'the TAN step ended without an answer');
  return result;
}

/** A wrong TAN that also ends the dialog (9800) or locks the access cannot be retried. */
function failureClosesDialog(res: SyncResponse): boolean {
  return res.bankAnswers.some((a) => a.code === 9800 || a.code === 3938 || a.code === 9931);
}

async function approval(
  ctx: LoginContext,
  client: FinTSClient,
  method: TanMethod,
  reference: string,
  prompt: string | null,
): Promise<SyncResponse> {
  ctx.stage('approval');
  const params = method.decoupled;
  // The bank says how long to wait before the first status request and between two (HITANS 7).
  const firstAt = Date.now() + (params?.waitingSecondsBeforeFirstStatusRequest ?? 0) * 1000;
  const seconds = Math.max(params?.waitingSecondsBetweenStatusRequests ?? 0, 1);
  const maxPolls = params?.maxStatusRequests || Number.POSITIVE_INFINITY;
  let polls = 0;
  let approved: SyncResponse | null = null;
  await ctx.requestApproval(
    { purpose: 'login', prompt },
    async () => {
      if (Date.now() < firstAt) return { outcome: 'pending' };
      if (polls >= maxPolls) return { outcome: 'expired' };
      polls++;
      const res = await call(ctx.signal, 'the approval status', () => client.synchronizeWithTan(reference));
      if (res.requiresTan) return { outcome: 'pending' };
      if (res.success) {
        approved = res;
        return { outcome: 'approved' };
      }
      const failure = failureOf(res.bankAnswers, 'the approval');
      if (failure.kind !== 'connector_broken') throw failure;
      throw new ConnectorError('code_rejected', `the approval was not given (${describe(res.bankAnswers)})`);
    },
    { poll_ms: seconds * 1000 },
  );
  if (approved === null) throw new ConnectorError('connector_broken', 'the approval ended without an answer');
  return approved;
}
