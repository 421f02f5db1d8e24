/*
 * otpilot connector test kit (`otpilot/sdk/testing`): runs a connector's `login` and data calls with no
 * server and no store. The person (codes, approvals) is a script, the trust store lives in memory,
 * stages and logs are captured, and a clock stands in for time. Works with any test runner.
 */
import { checkCode } from '../core/descriptor.js';
import {
  type ApprovalRequest,
  type ApprovalStatus,
  type Balance,
  type BankAccount,
  type BankSession,
  type CodeRequest,
  type CodeVerdict,
  type Connector,
  type DateRange,
  ENGINE_STOP,
  type Identity,
  type LoginContext,
  type Movement,
  type TrustStore,
} from './sdk.js';

/** A clock the test moves by hand; epoch milliseconds. */
export interface TestClock {
  now(): number;
  advance(ms: number): void;
  set(ms: number): void;
}

/** Starts at `start` [2024-01-01T00:00:00Z] and moves only when told. */
export function makeTestClock(start = Date.UTC(2024, 0, 1)): TestClock {
  let t = start;
  return {
    now: () => t,
    advance: (ms) => {
      t += ms;
    },
    set: (ms) => {
      t = ms;
    },
  };
}

/**
 * One submitted code: the code itself, or a function that fetches it (from your fake bank's inbox)
 * when the request opens. `'resend'` asks the connector's `resend` for a new code instead.
 */
export type ScriptedCode = string | 'resend' | ((request: CodeRequest) => string | Promise<string>);

/**
 * What the person does when an approval request opens: a function (tell your fake bank the app
 * approved, or declined), or `'ignore'` (nobody approves; the request expires at the deadline).
 */
export type ScriptedApproval = 'ignore' | (() => void | Promise<void>);

/** Why the kit stopped a login the way the engine would (the error it throws is an engine stop). */
export type StopReason = 'expired' | 'attempts_exhausted' | 'cancelled';

/** The engine's stop as the kit throws it: `isEngineStop(err)` is true. */
export class TestEngineStop extends Error {
  readonly [ENGINE_STOP] = true;
  readonly reason: StopReason;
  constructor(reason: StopReason, message: string) {
    super(message);
    this.name = 'TestEngineStop';
    this.reason = reason;
  }
}

/** The in-memory trust store with what was written to it. */
export interface FakeTrustStore extends TrustStore {
  value: string | null;
  expires_at: Date | null;
  /** Every `set`, in order. */
  writes: Array<{ value: string | null; expires_at: Date | null }>;
}

export function makeFakeTrustStore(initial: { value?: string | null; expires_at?: Date | null } = {}): FakeTrustStore {
  const store: FakeTrustStore = {
    value: initial.value ?? null,
    expires_at: initial.expires_at ?? null,
    writes: [],
    get: async () => store.value,
    set: async (value, options = {}) => {
      store.value = value;
      store.expires_at = value === null ? null : (options.expires_at ?? null);
      store.writes.push({ value: store.value, expires_at: store.expires_at });
    },
  };
  return store;
}

export interface LogLine {
  level: 'debug' | 'info' | 'warn' | 'error';
  msg: string;
  data: Record<string, unknown> | undefined;
}

export interface TestContextOptions<K extends string = string> {
  credentials: Record<K, string>;
  /** One entry per submitted code, across every code request of the login, in order [none]. */
  codes?: ScriptedCode[];
  /** One entry per approval request, in order [none]. */
  approvals?: ScriptedApproval[];
  /** [an empty fake trust store] */
  trust?: FakeTrustStore;
  /** [makeTestClock()] */
  clock?: TestClock;
  /** The approval deadline on the kit's clock, seconds [300]: each pending `check` advances the clock by its poll interval. */
  assist_timeout_seconds?: number;
  /** Called for every stage the connector records (to act at a given point, e.g. cancel). */
  onStage?: (name: string) => void;
}

/** A login context driven by a script, and everything the connector did with it. */
export interface TestContext<K extends string = string> {
  ctx: LoginContext<K>;
  /** Every code request, as the connector described it. */
  code_requests: CodeRequest[];
  /** Every approval request. */
  approval_requests: ApprovalRequest[];
  /** The connector's verdict on each code that reached `tryCode`. */
  verdicts: CodeVerdict[];
  /** Scripted codes that did not fit the request's descriptor (never passed to `tryCode`), with why. */
  refused: Array<{ code: string; reason: string }>;
  stages: Array<{ name: string; at: number }>;
  logs: LogLine[];
  trust: FakeTrustStore;
  clock: TestClock;
  /** Stops the login as a cancelled session would: aborts `ctx.signal` with an engine stop. */
  cancel(): void;
  /** Log lines that contain a credential value or a submitted code (should be none). */
  leaks(): LogLine[];
}

const DEFAULT_POLL_MS = 1000;

/** A login context for one test login. */
export function makeTestContext<K extends string>(options: TestContextOptions<K>): TestContext<K> {
  const clock = options.clock ?? makeTestClock();
  const trust = options.trust ?? makeFakeTrustStore();
  const codes = [...(options.codes ?? [])];
  const approvals = [...(options.approvals ?? [])];
  const deadlineMs = (options.assist_timeout_seconds ?? 300) * 1000;
  const controller = new AbortController();
  const submitted: string[] = [];
  const kit: TestContext<K> = {
    code_requests: [],
    approval_requests: [],
    verdicts: [],
    refused: [],
    stages: [],
    logs: [],
    trust,
    clock,
    cancel: () => controller.abort(new TestEngineStop('cancelled', 'the session was cancelled')),
    leaks: () => {
      const secrets = [...Object.values<string>(options.credentials), ...submitted].filter((s) => s.length >= 3);
      return kit.logs.filter((line) => {
        const text = `${line.msg} ${JSON.stringify(line.data ?? {})}`;
        return secrets.some((secret) => text.includes(secret));
      });
    },
    ctx: undefined as unknown as LoginContext<K>,
  };
  const log = (level: LogLine['level']) => (msg: string, data?: Record<string, unknown>) => {
    kit.logs.push({ level, msg, data });
  };
  kit.ctx = {
    credentials: Object.freeze({ ...options.credentials }),
    trust,
    signal: controller.signal,
    log: { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') },
    stage(name) {
      if (kit.stages[kit.stages.length - 1]?.name !== name) kit.stages.push({ name, at: clock.now() });
      options.onStage?.(name);
    },
    async requestCode<T>(
      request: CodeRequest,
      tryCode: (code: string) => Promise<CodeVerdict<T>>,
      requestOptions: { resend?: () => Promise<void> } = {},
    ): Promise<T | undefined> {
      kit.code_requests.push(request);
      let attempts = Math.min(Math.max(request.max_attempts ?? 3, 1), 3);
      for (;;) {
        controller.signal.throwIfAborted();
        const next = codes.shift();
        if (next === undefined) throw new TestEngineStop('expired', 'no scripted code left: the request expired');
        if (next === 'resend') {
          await requestOptions.resend?.();
          continue;
        }
        const raw = typeof next === 'function' ? await next(request) : next;
        submitted.push(raw);
        const checked = checkCode(raw, request);
        if (!checked.ok) {
          kit.refused.push({ code: raw, reason: checked.reason });
          continue;
        }
        const verdict = await tryCode(checked.code);
        kit.verdicts.push(verdict);
        if (verdict.outcome === 'accepted') return verdict.value;
        if (--attempts === 0) throw new TestEngineStop('attempts_exhausted', 'the code was rejected too often');
      }
    },
    async requestApproval(request, check, approvalOptions = {}) {
      kit.approval_requests.push(request);
      const person = approvals.shift() ?? 'ignore';
      if (person !== 'ignore') await person();
      const pollMs = Math.min(Math.max(approvalOptions.poll_ms ?? DEFAULT_POLL_MS, 100), 10_000);
      const deadline = clock.now() + deadlineMs;
      for (;;) {
        controller.signal.throwIfAborted();
        const status: ApprovalStatus = await check();
        if (status.outcome === 'approved') return;
        if (status.outcome === 'expired') throw new TestEngineStop('expired', 'the bank stopped waiting');
        if (clock.now() + pollMs > deadline) throw new TestEngineStop('expired', 'nobody approved before the deadline');
        clock.advance(pollMs);
        // Real time passes too (a moment), so a bank on a socket gets its turn.
        await new Promise((resolve) => setTimeout(resolve, 1));
      }
    },
  };
  return kit;
}

/** What a login read, as the engine would read it. */
export interface ReadResult {
  accounts: BankAccount[];
  balances: Balance[];
  identity: Identity;
  movements: Movement[];
  /** What the engine would refuse or misread in it (empty when all is well). */
  problems: string[];
}

const DECIMAL = /^-?\d+(\.\d+)?$/;
const DATE = /^\d{4}-\d{2}-\d{2}/;

/** Calls the data methods in the engine's order (ledgers, balances and identity together, then movements) and checks the shapes. */
export async function readSession(session: BankSession, range: DateRange): Promise<ReadResult> {
  const [accounts, balances, identity] = await Promise.all([
    session.bankAccounts(),
    session.balances(),
    session.identity(),
  ]);
  const movements = await session.movements(range);
  const problems: string[] = [];
  const ids = new Set(accounts.map((a) => a.id));
  if (ids.size !== accounts.length) problems.push('two ledgers share an id');
  for (const b of balances) {
    if (!ids.has(b.bank_account_id)) problems.push(`balance of unknown ledger ${b.bank_account_id}`);
    if (!DECIMAL.test(b.current)) problems.push(`balance ${b.bank_account_id}: current is not a decimal string`);
  }
  for (const m of movements) {
    if (!ids.has(m.bank_account_id)) problems.push(`movement of unknown ledger ${m.bank_account_id}`);
    if (!DECIMAL.test(m.amount)) problems.push(`movement ${m.id ?? '?'}: amount is not a decimal string`);
    if (!DATE.test(m.booked_at)) problems.push(`movement ${m.id ?? '?'}: booked_at is not an ISO date`);
  }
  return { accounts, balances, identity, movements, problems };
}

/** One whole login: `login`, then `readSession`, then `close`, with the kit's context. */
export async function runLogin<K extends string>(
  connector: Connector<K>,
  options: TestContextOptions<K> & { range?: DateRange },
): Promise<TestContext<K> & { data: ReadResult }> {
  const kit = makeTestContext(options);
  const session = await connector.login(kit.ctx);
  try {
    const today = new Date(kit.clock.now()).toISOString().slice(0, 10);
    return { ...kit, data: await readSession(session, options.range ?? { from: today, to: today }) };
  } finally {
    await session.close().catch(() => {});
  }
}
