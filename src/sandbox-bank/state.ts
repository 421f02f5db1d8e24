import { randomBytes } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { alphanumericCode, normalizeSubmittedCode, numericCode } from './codes.js';
import { type ForwardConfig, forwardSms, type Sms } from './forward.js';
import {
  accountsOf,
  balanceCents,
  formatCents,
  MAX_RANGE_SLOTS,
  movementsBetween,
  type SandboxAccount,
  slotRange,
} from './movements.js';
import { base32Decode, verifyTotp } from './totp.js';
import { type Behaviour, behaviourOf, maskedPhone, phoneOf, profileOf, SMS_SENDER, TOTP_SECRET } from './users.js';

/** Resolved options of one sandbox bank (index.ts documents each). */
export interface BankConfig {
  now: () => number;
  codeValidityMs: number;
  corporateWindowMs: number;
  trustValidityMs: number;
  slowMs: number;
  approvalValidityMs: number;
  sessionValidityMs: number;
}

/** What the bank answers: an HTTP status and a JSON body. The status is part of the simulated bank's behaviour. */
export interface BankReply {
  status: number;
  body: unknown;
}

const MAX_ATTEMPTS = 3;
const MAX_RESENDS = 3;
/** Messages kept per phone; older ones fall off so memory stays bounded under benchmarks. */
const MAX_MESSAGES = 20;
/**
 * A finished challenge is kept about this long past its expiry so late calls get 410 rather than 404; short,
 * because at a thousand logins a second every retained minute costs sixty thousand records.
 */
const CHALLENGE_RETENTION_MS = 60_000;
/** Lazy pruning removes at most this many entries per call, so no single request pays for a backlog. */
const PRUNE_BATCH = 64;

interface UserState {
  readonly username: string;
  readonly behaviour: Behaviour;
  readonly phone: string;
  /** Oldest first; the phone endpoint reverses. */
  readonly messages: Sms[];
  locked: boolean;
  lastSuccessAt: number | null;
  loginCalls: number;
  pendingApproval: string | null;
  forward: ForwardConfig | null;
  accounts: SandboxAccount[] | null;
}

type ChallengeKind = 'sms' | 'totp' | 'approval';
type ChallengeStatus = 'pending' | 'approved' | 'used' | 'locked' | 'cancelled';

interface Challenge {
  readonly id: string;
  readonly user: UserState;
  readonly kind: ChallengeKind;
  /** The SMS code; null for TOTP and approvals. */
  code: string | null;
  readonly length: number;
  readonly type: 'numeric' | 'alphanumeric';
  expiresAt: number;
  attemptsLeft: number;
  resends: number;
  status: ChallengeStatus;
  /** When the record itself may be forgotten. */
  pruneAt: number;
}

interface Expiring {
  readonly user: UserState;
  readonly expiresAt: number;
}

function token(prefix: string): string {
  return `${prefix}_${randomBytes(18).toString('base64url')}`;
}

function error(status: number, kind: string, message: string): BankReply {
  return { status, body: { error: kind, message } };
}

const TOTP_KEY = base32Decode(TOTP_SECRET);

/**
 * All state of one sandbox bank. Maps are keyed by id and kept in insertion order; every validity is a constant,
 * so insertion order is also expiry order and pruning only ever looks at the front.
 */
export class BankState {
  private readonly users = new Map<string, UserState>();
  private readonly challenges = new Map<string, Challenge>();
  private readonly sessions = new Map<string, Expiring>();
  private readonly trustTokens = new Map<string, Expiring>();
  /** Logins waiting on a code or an approval, ordered by expiry (a resend moves its challenge to the back). */
  private readonly openCodes = new Set<Challenge>();
  private readonly openApprovals = new Set<Challenge>();
  private loginsInFlight = 0;
  private maxActive = 0;
  private loginCount = 0;

  constructor(private readonly config: BankConfig) {}

  /** The bank's clock (injected in tests). */
  now(): number {
    return this.config.now();
  }

  /** Simultaneous logins in progress (requests in flight plus logins waiting on a code or approval). */
  stats(): { activeLogins: number; maxActiveLogins: number; logins: number } {
    return { activeLogins: this.activeLogins(), maxActiveLogins: this.maxActive, logins: this.loginCount };
  }

  // ---- login -------------------------------------------------------------------------------------------------

  async login(username: string, password: string, trustToken: string | null): Promise<BankReply> {
    this.loginCount++;
    const behaviour = behaviourOf(username);
    if (behaviour === null) return error(401, 'invalid_credentials', 'unknown username or wrong password');
    this.loginsInFlight++;
    this.maxActive = Math.max(this.maxActive, this.activeLogins());
    try {
      const user = this.user(username, behaviour);
      await this.pace(user);
      // Everything below is synchronous, so a challenge joins the open set in the same tick the request
      // leaves the in-flight count: the login is never counted twice or dropped in between.
      return this.decideLogin(user, password, trustToken);
    } finally {
      this.loginsInFlight--;
    }
  }

  private decideLogin(user: UserState, password: string, trustToken: string | null): BankReply {
    const now = this.config.now();
    if (user.behaviour === 'flaky' && user.loginCalls++ % 2 === 0) {
      return error(503, 'unavailable', 'the bank is temporarily unavailable');
    }
    if (password === 'wrong') return error(401, 'invalid_credentials', 'unknown username or wrong password');
    if (user.locked || user.behaviour === 'locked') return error(423, 'account_locked', 'the account is locked');
    switch (user.behaviour) {
      case 'alice':
      case 'flaky':
      case 'slow':
        return this.success(user, false);
      case 'otp':
        return this.codeChallenge(user, 'sms', 6, 'numeric');
      case 'otp8':
        return this.codeChallenge(user, 'sms', 8, 'alphanumeric');
      case 'corporate':
        if (user.lastSuccessAt !== null && now - user.lastSuccessAt <= this.config.corporateWindowMs) {
          return this.success(user, false);
        }
        return this.codeChallenge(user, 'sms', 6, 'numeric');
      case 'trust':
        if (trustToken !== null && this.trusted(user, trustToken, now)) return this.success(user, false);
        return this.codeChallenge(user, 'sms', 6, 'numeric');
      case 'totp':
        return this.codeChallenge(user, 'totp', 6, 'numeric');
      case 'approve':
        return this.approvalChallenge(user);
      default: {
        const never: never = user.behaviour;
        throw new Error(`unhandled behaviour ${String(never)}`);
      }
    }
  }

  private trusted(user: UserState, value: string, now: number): boolean {
    const trust = this.trustTokens.get(value);
    if (trust === undefined) return false;
    if (trust.expiresAt < now) {
      this.trustTokens.delete(value);
      return false;
    }
    return trust.user === user;
  }

  private success(user: UserState, withTrust: boolean): BankReply {
    const now = this.config.now();
    user.lastSuccessAt = now;
    const session = token('sess');
    pruneFront(this.sessions, now, expiryOf);
    this.sessions.set(session, { user, expiresAt: now + this.config.sessionValidityMs });
    if (!withTrust) return { status: 200, body: { status: 'ok', session_token: session } };
    const trust = token('trust');
    const expiresAt = now + this.config.trustValidityMs;
    pruneFront(this.trustTokens, now, expiryOf);
    this.trustTokens.set(trust, { user, expiresAt });
    return {
      status: 200,
      body: {
        status: 'ok',
        session_token: session,
        trust_token: trust,
        trust_expires_at: new Date(expiresAt).toISOString(),
      },
    };
  }

  private codeChallenge(
    user: UserState,
    kind: 'sms' | 'totp',
    length: number,
    type: 'numeric' | 'alphanumeric',
  ): BankReply {
    const now = this.config.now();
    const challenge: Challenge = {
      id: token('chl'),
      user,
      kind,
      code: null,
      length,
      type,
      expiresAt: now + this.config.codeValidityMs,
      attemptsLeft: MAX_ATTEMPTS,
      resends: 0,
      status: 'pending',
      pruneAt: now + this.retentionMs(),
    };
    if (kind === 'sms') this.sendCode(challenge, now);
    this.remember(challenge, now);
    this.openCodes.add(challenge);
    return { status: 200, body: this.codeRequired(challenge) };
  }

  private approvalChallenge(user: UserState): BankReply {
    const now = this.config.now();
    const challenge: Challenge = {
      id: token('chl'),
      user,
      kind: 'approval',
      code: null,
      length: 0,
      type: 'numeric',
      expiresAt: now + this.config.approvalValidityMs,
      attemptsLeft: 0,
      resends: 0,
      status: 'pending',
      pruneAt: now + this.retentionMs(),
    };
    this.remember(challenge, now);
    this.openApprovals.add(challenge);
    user.pendingApproval = challenge.id;
    return {
      status: 200,
      body: {
        status: 'approval_required',
        challenge_id: challenge.id,
        expires_at: new Date(challenge.expiresAt).toISOString(),
        prompt: APPROVAL_PROMPT,
      },
    };
  }

  private codeRequired(c: Challenge): Record<string, unknown> {
    return {
      status: c.kind === 'totp' ? 'totp_required' : 'code_required',
      challenge_id: c.id,
      code: {
        length: c.length,
        type: c.type,
        prompt:
          c.kind === 'totp'
            ? 'Enter the code from your authenticator app'
            : `Enter the code we sent to ${maskedPhone(c.user.phone)}`,
        expires_at: new Date(c.expiresAt).toISOString(),
        attempts_left: c.attemptsLeft,
      },
    };
  }

  private sendCode(c: Challenge, now: number): void {
    const code = c.type === 'numeric' ? numericCode(c.length) : alphanumericCode(c.length);
    c.code = code;
    const minutes = Math.max(1, Math.round(this.config.codeValidityMs / 60_000));
    const sms: Sms = {
      body: `${SMS_SENDER}: your login code is ${code}. It is valid for ${minutes} minute${minutes === 1 ? '' : 's'}. Never share this code.`,
      code,
      sent_at: new Date(now).toISOString(),
      to: c.user.phone,
      from: SMS_SENDER,
    };
    const messages = c.user.messages;
    messages.push(sms);
    if (messages.length > MAX_MESSAGES) messages.splice(0, messages.length - MAX_MESSAGES);
    if (c.user.forward !== null) forwardSms(c.user.forward, sms);
  }

  // ---- challenges -------------------------------------------------------------------------------------------

  async verify(id: string, submitted: string): Promise<BankReply> {
    const c = this.challenges.get(id);
    if (c === undefined) return error(404, 'not_found', 'unknown challenge');
    await this.pace(c.user);
    if (c.kind === 'approval') return error(409, 'not_a_code_challenge', 'this challenge is approved on the phone');
    const now = this.config.now();
    const closed = this.closedReply(c, now);
    if (closed !== null) return closed;
    const code = normalizeSubmittedCode(submitted);
    const ok = c.kind === 'totp' ? verifyTotp(TOTP_KEY, code, now) : code === c.code;
    if (ok) {
      this.close(c, 'used');
      return this.success(c.user, c.user.behaviour === 'trust');
    }
    c.attemptsLeft--;
    if (c.attemptsLeft > 0) return { status: 200, body: { status: 'rejected', attempts_left: c.attemptsLeft } };
    // The behaviour the product guards against: the third wrong code locks the login for good.
    this.close(c, 'locked');
    c.user.locked = true;
    return error(423, 'account_locked', 'too many wrong codes; the account is locked');
  }

  async resend(id: string): Promise<BankReply> {
    const c = this.challenges.get(id);
    if (c === undefined) return error(404, 'not_found', 'unknown challenge');
    await this.pace(c.user);
    if (c.kind !== 'sms') return error(409, 'not_resendable', 'this challenge does not use SMS codes');
    const now = this.config.now();
    const closed = this.closedReply(c, now);
    if (closed !== null) return closed;
    if (c.resends >= MAX_RESENDS) return error(429, 'too_many_resends', `at most ${MAX_RESENDS} resends per login`);
    c.resends++;
    c.expiresAt = now + this.config.codeValidityMs;
    c.pruneAt = now + this.retentionMs();
    this.sendCode(c, now);
    // Move to the back of both ordered collections: its expiry is now the latest.
    this.challenges.delete(c.id);
    this.challenges.set(c.id, c);
    this.openCodes.delete(c);
    this.openCodes.add(c);
    return { status: 200, body: this.codeRequired(c) };
  }

  async status(id: string): Promise<BankReply> {
    const c = this.challenges.get(id);
    if (c === undefined) return error(404, 'not_found', 'unknown challenge');
    await this.pace(c.user);
    const status = this.effectiveStatus(c, this.config.now());
    if (status === 'approved') {
      // The approved login is handed over exactly once.
      this.close(c, 'used');
      return this.success(c.user, false);
    }
    const expiresAt = new Date(c.expiresAt).toISOString();
    if (c.kind === 'approval') {
      return {
        status: 200,
        body: status === 'pending' ? { status, expires_at: expiresAt, prompt: APPROVAL_PROMPT } : { status },
      };
    }
    return { status: 200, body: { status, expires_at: expiresAt, attempts_left: c.attemptsLeft } };
  }

  /** Lets a connector give up on a login so it stops counting as in progress. */
  async cancel(id: string): Promise<BankReply> {
    const c = this.challenges.get(id);
    if (c === undefined) return error(404, 'not_found', 'unknown challenge');
    await this.pace(c.user);
    const status = this.effectiveStatus(c, this.config.now());
    if (status !== 'pending' && status !== 'approved') {
      return error(410, status, `the challenge is already ${status}`);
    }
    this.close(c, 'cancelled');
    return { status: 200, body: { status: 'cancelled' } };
  }

  private effectiveStatus(c: Challenge, now: number): ChallengeStatus | 'expired' {
    if ((c.status === 'pending' || c.status === 'approved') && c.expiresAt < now) return 'expired';
    return c.status;
  }

  /** The reply for a challenge that can no longer take a code, or null while it can. */
  private closedReply(c: Challenge, now: number): BankReply | null {
    const status = this.effectiveStatus(c, now);
    if (status === 'locked' || (status === 'pending' && c.user.locked)) {
      this.close(c, 'locked');
      return error(423, 'account_locked', 'the account is locked');
    }
    if (status === 'expired') {
      this.openCodes.delete(c);
      return error(410, 'expired', 'the code has expired');
    }
    if (status !== 'pending') return error(410, status, `the challenge is already ${status}`);
    return null;
  }

  private close(c: Challenge, status: ChallengeStatus): void {
    c.status = status;
    this.openCodes.delete(c);
    this.openApprovals.delete(c);
    if (c.user.pendingApproval === c.id) c.user.pendingApproval = null;
  }

  private remember(c: Challenge, now: number): void {
    pruneFront(this.challenges, now, (x) => x.pruneAt);
    this.challenges.set(c.id, c);
  }

  private retentionMs(): number {
    return Math.max(this.config.codeValidityMs, this.config.approvalValidityMs) + CHALLENGE_RETENTION_MS;
  }

  private activeLogins(): number {
    const now = this.config.now();
    sweepExpired(this.openCodes, now);
    sweepExpired(this.openApprovals, now);
    return this.loginsInFlight + this.openCodes.size + this.openApprovals.size;
  }

  // ---- sessions and data ------------------------------------------------------------------------------------

  /** The user behind a bearer token, or null when it is unknown or expired. */
  sessionUser(sessionToken: string): UserState | null {
    const session = this.sessions.get(sessionToken);
    if (session === undefined) return null;
    if (session.expiresAt < this.config.now()) {
      this.sessions.delete(sessionToken);
      return null;
    }
    return session.user;
  }

  /** Keeps a session alive: its lifetime starts again (sliding), or null when it has already ended. */
  keepAlive(sessionToken: string): { expires_at: string } | null {
    if (this.sessionUser(sessionToken) === null) return null;
    const session = this.sessions.get(sessionToken)!;
    // Re-inserted at the end: the map stays in expiry order (pruneFront relies on it).
    this.sessions.delete(sessionToken);
    const expiresAt = this.config.now() + this.config.sessionValidityMs;
    this.sessions.set(sessionToken, { user: session.user, expiresAt });
    return { expires_at: new Date(expiresAt).toISOString() };
  }

  /** Ends every open session of a user (the bank logs them out), as banks do now and then. */
  endSessions(username: string): number {
    let ended = 0;
    for (const [token, session] of this.sessions) {
      if (session.user.username !== username) continue;
      this.sessions.delete(token);
      ended++;
    }
    return ended;
  }

  async identity(user: UserState): Promise<BankReply> {
    await this.pace(user);
    const profile = profileOf(user.username);
    return { status: 200, body: { name: profile.name, email: profile.email, phone: user.phone } };
  }

  async accounts(user: UserState): Promise<BankReply> {
    await this.pace(user);
    const now = this.config.now();
    const asOf = new Date(now).toISOString();
    const body = this.accountsOf(user).map((a) => {
      const balance = formatCents(balanceCents(user.username, a, now));
      return {
        id: a.id,
        name: a.name,
        iban: a.iban,
        number: a.number,
        currency: a.currency,
        type: a.type,
        balance: { current: balance, available: balance, as_of: asOf },
      };
    });
    return { status: 200, body };
  }

  async transactions(user: UserState, accountId: string, fromMs: number, toMs: number): Promise<BankReply> {
    await this.pace(user);
    const account = this.accountsOf(user).find((a) => a.id === accountId);
    if (account === undefined) return error(404, 'not_found', 'unknown account');
    const range = slotRange(fromMs, toMs, this.config.now());
    if (range.last - range.first + 1 > MAX_RANGE_SLOTS) {
      return error(400, 'range_too_large', 'ask for a shorter date range');
    }
    return { status: 200, body: movementsBetween(user.username, account, range) };
  }

  private accountsOf(user: UserState): SandboxAccount[] {
    user.accounts ??= accountsOf(user.username);
    return user.accounts;
  }

  // ---- phone ------------------------------------------------------------------------------------------------

  /** The phone's messages newest first; null when the bank has no such user. */
  phone(username: string): { messages: Sms[]; phone: string; pending_approval: { expires_at: string } | null } | null {
    const behaviour = behaviourOf(username);
    if (behaviour === null) return null;
    const user = this.users.get(username);
    if (user === undefined) return { messages: [], phone: phoneOf(username), pending_approval: null };
    const pending = this.pendingApproval(user);
    return {
      messages: user.messages.slice().reverse(),
      phone: user.phone,
      pending_approval: pending === null ? null : { expires_at: new Date(pending.expiresAt).toISOString() },
    };
  }

  approve(username: string): BankReply {
    const user = this.users.get(username);
    const pending = user === undefined ? null : this.pendingApproval(user);
    if (pending === null) return error(404, 'not_found', 'no login is waiting for approval');
    pending.status = 'approved';
    pending.user.pendingApproval = null;
    return { status: 200, body: { approved: true } };
  }

  private pendingApproval(user: UserState): Challenge | null {
    if (user.pendingApproval === null) return null;
    const c = this.challenges.get(user.pendingApproval);
    if (c === undefined || this.effectiveStatus(c, this.config.now()) !== 'pending') {
      user.pendingApproval = null;
      return null;
    }
    return c;
  }

  /** Returns false when the bank has no such user. */
  setForward(username: string, forward: ForwardConfig | null): boolean {
    const behaviour = behaviourOf(username);
    if (behaviour === null) return false;
    this.user(username, behaviour).forward = forward;
    return true;
  }

  // ---- helpers ----------------------------------------------------------------------------------------------

  private user(username: string, behaviour: Behaviour): UserState {
    let user = this.users.get(username);
    if (user === undefined) {
      user = {
        username,
        behaviour,
        phone: phoneOf(username),
        messages: [],
        locked: false,
        lastSuccessAt: null,
        loginCalls: 0,
        pendingApproval: null,
        forward: null,
        accounts: null,
      };
      this.users.set(username, user);
    }
    return user;
  }

  /** The `slow` user's latency: a plain timer, nothing is aborted. */
  private async pace(user: UserState): Promise<void> {
    if (user.behaviour === 'slow' && this.config.slowMs > 0) await delay(this.config.slowMs);
  }
}

const APPROVAL_PROMPT = 'Approve this login in the SandboxBank app on your phone';

/** Drops entries from the front of an expiry-ordered map while they are past `at(entry)`. */
function pruneFront<T>(map: Map<string, T>, now: number, at: (value: T) => number): void {
  let budget = PRUNE_BATCH;
  for (const [key, value] of map) {
    if (budget-- === 0 || at(value) >= now) return;
    map.delete(key);
  }
}

function expiryOf(entry: Expiring): number {
  return entry.expiresAt;
}

/** Drops logins whose code or approval has expired from an expiry-ordered set. */
function sweepExpired(set: Set<Challenge>, now: number): void {
  for (const c of set) {
    if (c.expiresAt >= now) return;
    set.delete(c);
  }
}
