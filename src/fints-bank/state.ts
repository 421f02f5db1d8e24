import { randomBytes, randomInt } from 'node:crypto';
import { behaviourOf, type FintsBehaviour } from './users.js';

/** Knobs of a FinTS test bank; defaults as docs/fints.md lists them. */
export interface FintsBankOptions {
  /** The bank code (BLZ) it answers for, default 12345678. */
  blz?: string;
  /** Millisecond clock, default `Date.now` (tests move it to expire exemptions). */
  now?: () => number;
  /** `tan`/`decoupled`: a login within this long after a strong authentication needs none, default 5 minutes. */
  tanWindowMs?: number;
  /** `newsys`/`pages`: how long a strongly authenticated system id stays exempt, default 90 days. */
  systemWindowMs?: number;
  /** Movements per statement message before the bank pages with 3040, default 5. */
  pageSize?: number;
  /** Wrong TANs (and wrong PINs) after which the bank locks the access, default 3. */
  attempts?: number;
  /** How long a TAN challenge or approval stays open, default 5 minutes. */
  challengeValidityMs?: number;
}

const DIALOG_LIFETIME_MS = 60 * 60_000;

export type ChallengeState = 'pending' | 'approved' | 'refused' | 'used' | 'locked';

/** One open strong authentication (an smsTAN or a decoupled approval) of a dialog init. */
export interface Challenge {
  orderRef: string;
  userId: string;
  systemId: string;
  kind: 'tan' | 'decoupled';
  /** The smsTAN; null for decoupled approvals. */
  code: string | null;
  attempts: number;
  state: ChallengeState;
  createdAt: number;
}

/** What the user's phone shows: smsTANs and approval requests, newest first. */
export interface PhoneEntry {
  at: string;
  kind: 'tan' | 'decoupled';
  text: string;
  code: string | null;
  order_ref: string;
}

export interface UserState {
  id: string;
  behaviour: FintsBehaviour;
  wrongPins: number;
  locked: boolean;
  /** Strong authentication per system id: exempt until this time (ms). */
  scaUntil: Map<string, number>;
  phone: PhoneEntry[];
}

export interface DialogState {
  id: string;
  /** When the dialog was opened (ms); dialogs a client never ended are dropped after an hour. */
  openedAt: number;
  userId: string | null;
  systemId: string;
  /** The order references of this dialog's open challenge, if any. */
  challenge: Challenge | null;
  authenticated: boolean;
  /** Set when the init asked for a new system id (HKSYN). */
  newSystemId: string | null;
  /** HKSYN/HKVVB segment numbers of the init, for references in the deferred answer. */
  initRefs: { hkidn: number; hkvvb: number; hksyn: number | null; hktan: number | null };
}

/** All the mutable state of one FinTS test bank. */
export class FintsBankState {
  readonly blz: string;
  readonly now: () => number;
  readonly tanWindowMs: number;
  readonly systemWindowMs: number;
  readonly pageSize: number;
  readonly attempts: number;
  readonly challengeValidityMs: number;
  private readonly users = new Map<string, UserState>();
  readonly dialogs = new Map<string, DialogState>();
  readonly challenges = new Map<string, Challenge>();
  /** Business transactions served, by segment (HKSAL, HKKAZ, HKCAZ): what tests check the client asked for. */
  readonly orders = new Map<string, number>();
  /** Every system id this bank has handed out (HISYN). */
  readonly systemIds = new Set<string>();

  constructor(options: FintsBankOptions = {}) {
    this.blz = options.blz ?? '12345678';
    this.now = options.now ?? Date.now;
    this.tanWindowMs = options.tanWindowMs ?? 5 * 60_000;
    this.systemWindowMs = options.systemWindowMs ?? 90 * 86_400_000;
    this.pageSize = options.pageSize ?? 5;
    this.attempts = options.attempts ?? 3;
    this.challengeValidityMs = options.challengeValidityMs ?? 5 * 60_000;
  }

  /** The user's state, created on first use; null for an id the bank does not know. */
  user(id: string): UserState | null {
    const known = this.users.get(id);
    if (known) return known;
    const behaviour = behaviourOf(id);
    if (behaviour === null) return null;
    const state: UserState = {
      id,
      behaviour,
      wrongPins: 0,
      locked: behaviour === 'locked',
      scaUntil: new Map(),
      phone: [],
    };
    this.users.set(id, state);
    return state;
  }

  newId(prefix: string): string {
    return `${prefix}${randomBytes(9).toString('hex')}`;
  }

  /** Whether a dialog init of this user and system id may skip the strong authentication. */
  exempt(user: UserState, systemId: string): boolean {
    if (user.behaviour === 'notan') return true;
    const until = user.scaUntil.get(systemId);
    return until !== undefined && until > this.now();
  }

  /** Records a strong authentication of the system id. */
  authenticated(user: UserState, systemId: string): void {
    const window = user.behaviour === 'tan' || user.behaviour === 'decoupled' ? this.tanWindowMs : this.systemWindowMs;
    user.scaUntil.set(systemId, this.now() + window);
  }

  openChallenge(user: UserState, systemId: string, kind: 'tan' | 'decoupled'): Challenge {
    const challenge: Challenge = {
      orderRef: this.newId('O'),
      userId: user.id,
      systemId,
      kind,
      code: kind === 'tan' ? String(randomInt(0, 1_000_000)).padStart(6, '0') : null,
      attempts: 0,
      state: 'pending',
      createdAt: this.now(),
    };
    this.challenges.set(challenge.orderRef, challenge);
    user.phone.unshift({
      at: new Date(this.now()).toISOString(),
      kind,
      text:
        kind === 'tan'
          ? `Ihre TAN für die Anmeldung lautet ${challenge.code}`
          : 'Bitte geben Sie die Anmeldung in Ihrer App frei.',
      code: challenge.code,
      order_ref: challenge.orderRef,
    });
    user.phone.length = Math.min(user.phone.length, 20);
    return challenge;
  }

  /** Forgets challenges past their validity and dialogs open for over an hour (clients that never sent HKEND). */
  prune(): void {
    const now = this.now();
    for (const [ref, c] of this.challenges) if (this.expired(c)) this.challenges.delete(ref);
    for (const [id, d] of this.dialogs) if (d.openedAt + DIALOG_LIFETIME_MS <= now) this.dialogs.delete(id);
  }

  expired(challenge: Challenge): boolean {
    return challenge.createdAt + this.challengeValidityMs <= this.now();
  }

  /** The newest pending decoupled approval of a user, for the phone page. */
  pendingApproval(userId: string): Challenge | null {
    for (const c of this.challenges.values())
      if (c.userId === userId && c.kind === 'decoupled' && c.state === 'pending' && !this.expired(c)) return c;
    return null;
  }
}
