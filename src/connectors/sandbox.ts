import type { Response } from 'undici';
import { type BankFetch, makeBankFetch } from './bank-http.js';
import {
  type ApprovalStatus,
  type Balance,
  type BankAccount,
  type BankSession,
  type Connector,
  ConnectorError,
  type DateRange,
  defineConnector,
  type Identity,
  type LoginContext,
  type Movement,
} from './sdk.js';

/** How often an approval login asks the bank whether the phone approved it. */
const APPROVAL_POLL_MS = 250;
/** Abandoning a challenge is a courtesy; it must not hold up the failure it follows. */
const CANCEL_TIMEOUT_MS = 2_000;

type Json = Record<string, unknown>;

interface Answer {
  status: number;
  body: unknown;
}

interface SandboxAccountJson {
  account: BankAccount;
  balance: Balance;
}

function isRecord(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function broken(what: string): ConnectorError {
  return new ConnectorError('connector_broken', `unexpected answer from the sandbox bank: ${what}`);
}

function str(obj: Json, key: string, what: string): string {
  const value = obj[key];
  if (typeof value !== 'string') throw broken(`${what} has no ${key}`);
  return value;
}

function optStr(obj: Json, key: string): string | null {
  const value = obj[key];
  return typeof value === 'string' && value.length > 0 ? value : null;
}

/** The small typed HTTP client of one login: JSON in and out, failures turned into connector errors. */
class SandboxClient {
  constructor(
    private readonly base: string,
    private readonly signal: AbortSignal,
    private readonly fetch: BankFetch,
  ) {}

  /** `urgent`: a person waits on this call (see `BankFetch`). */
  async call(
    method: 'GET' | 'POST',
    path: string,
    options: { body?: Json; token?: string; urgent?: boolean } = {},
  ): Promise<Answer> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (options.body !== undefined) headers['content-type'] = 'application/json';
    if (options.token !== undefined) headers['authorization'] = `Bearer ${options.token}`;
    let res: Response;
    try {
      res = await this.fetch(
        new URL(path, this.base),
        {
          method,
          headers,
          body: options.body === undefined ? undefined : JSON.stringify(options.body),
          signal: this.signal,
        },
        { urgent: options.urgent === true },
      );
    } catch (err) {
      // A cancelled login surfaces as the abort itself, not as a bank failure.
      if (this.signal.aborted) throw err;
      throw new ConnectorError('bank_unavailable', 'the sandbox bank could not be reached', { cause: err });
    }
    if (res.status === 503) {
      await res.body?.cancel();
      throw new ConnectorError('bank_unavailable', 'the sandbox bank is unavailable (503)');
    }
    let body: unknown;
    try {
      body = await res.json();
    } catch (err) {
      if (this.signal.aborted) throw err;
      throw new ConnectorError('connector_broken', `the sandbox bank answered ${res.status} without JSON`, {
        cause: err,
      });
    }
    return { status: res.status, body };
  }

  /** A session call: 200 with a body, anything else is a failure. */
  async data(path: string, token: string): Promise<unknown> {
    const answer = await this.call('GET', path, { token });
    if (answer.status === 200) return answer.body;
    if (answer.status === 401) throw new ConnectorError('bank_unavailable', 'the sandbox bank session ended');
    throw broken(`${path.split('?')[0]} answered ${answer.status}`);
  }

  /** Tells the bank the login is abandoned so it stops counting it; never waits long, never fails. */
  cancel(challengeId: string): void {
    this.fetch(new URL(`api/challenges/${encodeURIComponent(challengeId)}`, this.base), {
      method: 'DELETE',
      signal: AbortSignal.timeout(CANCEL_TIMEOUT_MS),
    })
      .then((res) => res.body?.cancel())
      .catch(() => {});
  }
}

/** The answer to a login or verify call that carries a session. */
function sessionToken(body: Json): string {
  return str(body, 'session_token', 'the login answer');
}

/** Errors shared by login and verify answers. */
function failure(answer: Answer): ConnectorError {
  switch (answer.status) {
    case 401:
      return new ConnectorError('invalid_credentials', 'the sandbox bank refused the username or password');
    case 423:
      return new ConnectorError('account_locked', 'the sandbox bank reports the account locked');
    default:
      return broken(`status ${answer.status}`);
  }
}

async function codeLogin(ctx: LoginContext, client: SandboxClient, body: Json): Promise<string> {
  const challengeId = str(body, 'challenge_id', 'the code challenge');
  const code = body['code'];
  if (!isRecord(code)) throw broken('the code challenge has no code description');
  const length = code['length'];
  const type = code['type'];
  const attempts = code['attempts_left'];
  if (type !== 'numeric' && type !== 'alphanumeric') throw broken('unknown code type');
  ctx.stage('code');
  let token: string | undefined;
  // Set once the bank has closed the challenge itself (success, lock, expiry): no need to cancel it then.
  let settled = false;
  try {
    token = await ctx.requestCode<string>(
      {
        length: typeof length === 'number' ? length : null,
        type,
        purpose: 'login',
        prompt: optStr(code, 'prompt'),
        channel: body['status'] === 'totp_required' ? 'authenticator' : 'sms',
        // The bank locks the login when its last attempt fails; keep one in hand so it never does.
        ...(typeof attempts === 'number' ? { max_attempts: Math.max(1, attempts - 1) } : {}),
      },
      async (submitted) => {
        const answer = await client.call('POST', `api/challenges/${encodeURIComponent(challengeId)}/verify`, {
          body: { code: submitted },
          urgent: true,
        });
        const verdict = isRecord(answer.body) ? answer.body : {};
        if (answer.status === 200 && verdict['status'] === 'ok') {
          settled = true;
          const token = sessionToken(verdict);
          const trust = optStr(verdict, 'trust_token');
          const trustEnds = optStr(verdict, 'trust_expires_at');
          if (trust !== null)
            await ctx.trust.set(trust, { expires_at: trustEnds === null ? null : new Date(trustEnds) });
          return { outcome: 'accepted', value: token };
        }
        if (answer.status === 200 && verdict['status'] === 'rejected') {
          const left = verdict['attempts_left'];
          ctx.log.info('the sandbox bank rejected a code', { attempts_left: left });
          return { outcome: 'rejected', reason: 'the bank rejected the code' };
        }
        if (answer.status === 410) {
          settled = true;
          throw new ConnectorError(
            'code_rejected',
            verdict['error'] === 'expired' ? 'the bank says the code expired' : 'the bank no longer accepts this code',
          );
        }
        if (answer.status === 423) settled = true;
        throw failure(answer);
      },
      // Only an SMS can be sent again; an authenticator code cannot.
      body['status'] === 'code_required'
        ? {
            resend: async () => {
              const answer = await client.call('POST', `api/challenges/${encodeURIComponent(challengeId)}/resend`, {
                urgent: true,
              });
              if (answer.status !== 200) throw broken(`resend answered ${answer.status}`);
            },
          }
        : {},
    );
  } finally {
    if (!settled) client.cancel(challengeId);
  }
  if (token === undefined) throw broken('the code request ended without an accepted code');
  return token;
}

/** Decoupled approval: the engine holds the login (an `approval` request) while this asks the bank. */
async function approvalLogin(ctx: LoginContext, client: SandboxClient, body: Json): Promise<string> {
  const challengeId = str(body, 'challenge_id', 'the approval challenge');
  ctx.stage('approval');
  let token: string | null = null;
  let settled = false;
  try {
    await ctx.requestApproval(
      { purpose: 'login', prompt: optStr(body, 'prompt') },
      async (): Promise<ApprovalStatus> => {
        const answer = await client.call('GET', `api/challenges/${encodeURIComponent(challengeId)}`, { urgent: true });
        if (answer.status !== 200 || !isRecord(answer.body)) throw broken(`approval status ${answer.status}`);
        const status = answer.body['status'];
        switch (status) {
          case 'ok':
            settled = true;
            token = sessionToken(answer.body);
            return { outcome: 'approved' };
          case 'pending':
            return { outcome: 'pending' };
          case 'expired':
            settled = true;
            return { outcome: 'expired' };
          default:
            settled = true;
            throw new ConnectorError('code_rejected', `the approval ended (${String(status)})`);
        }
      },
      { poll_ms: APPROVAL_POLL_MS },
    );
  } finally {
    if (!settled) client.cancel(challengeId);
  }
  if (token === null) throw broken('the approval ended without a session');
  return token;
}

function toAccount(value: unknown, asOfFallback: string): SandboxAccountJson {
  if (!isRecord(value)) throw broken('an account is not an object');
  const id = str(value, 'id', 'an account');
  const currency = str(value, 'currency', 'an account');
  const balance = value['balance'];
  if (!isRecord(balance)) throw broken('an account has no balance');
  return {
    account: {
      id,
      name: str(value, 'name', 'an account'),
      iban: optStr(value, 'iban'),
      number: optStr(value, 'number'),
      currency,
      type: str(value, 'type', 'an account'),
    },
    balance: {
      bank_account_id: id,
      current: str(balance, 'current', 'a balance'),
      available: optStr(balance, 'available'),
      currency,
      as_of: optStr(balance, 'as_of') ?? asOfFallback,
    },
  };
}

function toMovement(value: unknown, accountId: string): Movement {
  if (!isRecord(value)) throw broken('a transaction is not an object');
  return {
    id: optStr(value, 'id'),
    bank_account_id: accountId,
    booked_at: str(value, 'booked_at', 'a transaction'),
    amount: str(value, 'amount', 'a transaction'),
    currency: str(value, 'currency', 'a transaction'),
    name: str(value, 'name', 'a transaction'),
    reference: optStr(value, 'reference'),
  };
}

function makeSession(ctx: LoginContext, client: SandboxClient, token: string): BankSession {
  // One scrape reads accounts and balances from the same answer; a failed read is retried on the next call.
  let accounts: Promise<SandboxAccountJson[]> | null = null;
  const loadAccounts = (): Promise<SandboxAccountJson[]> => {
    accounts ??= client.data('api/accounts', token).then((body) => {
      if (!Array.isArray(body)) throw broken('accounts is not a list');
      const asOf = new Date().toISOString();
      return body.map((a) => toAccount(a, asOf));
    });
    accounts.catch(() => {
      accounts = null;
    });
    return accounts;
  };
  return {
    async bankAccounts() {
      ctx.stage('accounts');
      return (await loadAccounts()).map((a) => a.account);
    },
    async balances() {
      ctx.stage('balances');
      return (await loadAccounts()).map((a) => a.balance);
    },
    async identity(): Promise<Identity> {
      ctx.stage('identity');
      const body = await client.data('api/identity', token);
      if (!isRecord(body)) throw broken('identity is not an object');
      return { name: str(body, 'name', 'the identity'), email: optStr(body, 'email'), phone: optStr(body, 'phone') };
    },
    async movements(range: DateRange): Promise<Movement[]> {
      ctx.stage('movements');
      const list = await loadAccounts();
      // Movements end a scrape: a kept session's next scrape reads fresh ledgers and balances.
      accounts = null;
      const query = `from=${encodeURIComponent(range.from)}&to=${encodeURIComponent(range.to)}`;
      const perAccount = await Promise.all(
        list.map(async ({ account }) => {
          const body = await client.data(`api/accounts/${encodeURIComponent(account.id)}/transactions?${query}`, token);
          if (!Array.isArray(body)) throw broken('transactions is not a list');
          return body.map((m) => toMovement(m, account.id));
        }),
      );
      return perAccount.flat();
    },
    async keepAlive() {
      const answer = await client.call('GET', 'api/session', { token });
      if (answer.status === 200) return true;
      if (answer.status === 401) return false;
      throw broken(`the session check answered ${answer.status}`);
    },
    async close() {
      // Sandbox sessions simply expire; there is nothing to log out of.
    },
  };
}

/**
 * The connector of the built-in sandbox bank; `baseUrl` is read per login and ends with `/sandbox-bank/`.
 * `fetch`: how its calls go out [a `makeBankFetch()` of its own: bounded connections, calls queue].
 */
export function makeSandboxConnector(options: { baseUrl: () => string; fetch?: BankFetch }): Connector {
  const bankFetch = options.fetch ?? makeBankFetch();
  return defineConnector({
    id: 'sandbox',
    name: 'Sandbox Bank',
    version: '1.0.0',
    credential_fields: [
      { name: 'username', label: 'Username', type: 'text', required: true },
      { name: 'password', label: 'Password', type: 'password', required: true },
    ],
    async login(ctx): Promise<BankSession> {
      const { username, password } = ctx.credentials;
      if (!username || !password) {
        throw new ConnectorError('invalid_credentials', 'the username and password are required');
      }
      const base = options.baseUrl();
      // Relative paths resolve under the base only when it ends with a slash.
      const client = new SandboxClient(base.endsWith('/') ? base : `${base}/`, ctx.signal, bankFetch);
      ctx.stage('login');
      const trust = await ctx.trust.get();
      const answer = await client.call('POST', 'api/login', {
        body: { username, password, ...(trust !== null ? { trust_token: trust } : {}) },
      });
      if (answer.status !== 200) throw failure(answer);
      if (!isRecord(answer.body)) throw broken('the login answer is not an object');
      const status = answer.body['status'];
      ctx.log.debug('sandbox bank login answered', { status });
      let token: string;
      switch (status) {
        case 'ok':
          token = sessionToken(answer.body);
          break;
        case 'code_required':
        case 'totp_required':
          token = await codeLogin(ctx, client, answer.body);
          break;
        case 'approval_required':
          token = await approvalLogin(ctx, client, answer.body);
          break;
        default:
          throw broken(`login status ${String(status)}`);
      }
      ctx.stage('logged_in');
      return makeSession(ctx, client, token);
    },
  });
}
