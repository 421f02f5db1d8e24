import { randomBytes } from 'node:crypto';

/** What the website remembers of one browser between pages (the bank's own state stays in BankState). */
export interface WebSession {
  readonly id: string;
  /** The code or approval challenge the login waits on, with what the OTP page shows. */
  challenge: WebChallenge | null;
  /** The bank session token once logged in. */
  bankToken: string | null;
  /** A message shown once on the next page ("The code is not correct"). */
  flash: string | null;
  lastSeenAt: number;
}

export interface WebChallenge {
  id: string;
  kind: 'code' | 'approval';
  prompt: string;
  length: number | null;
  type: 'numeric' | 'alphanumeric';
  resendable: boolean;
}

/** Visits older than this are forgotten on the next write, so memory stays bounded. */
const PRUNE_BATCH = 64;

/**
 * The website's cookie sessions, in memory. A session idle longer than `idleMs` has timed out: the
 * next page sends the browser back to the login form, as real banks do.
 */
export class WebSessions {
  private readonly byId = new Map<string, WebSession>();

  constructor(
    private readonly now: () => number,
    private readonly idleMs: number,
  ) {}

  create(): WebSession {
    this.prune();
    const session: WebSession = {
      id: randomBytes(18).toString('base64url'),
      challenge: null,
      bankToken: null,
      flash: null,
      lastSeenAt: this.now(),
    };
    this.byId.set(session.id, session);
    return session;
  }

  /** The live session behind a cookie value; `expired` when it existed but sat idle too long. */
  find(id: string | undefined): WebSession | 'expired' | null {
    if (id === undefined) return null;
    const session = this.byId.get(id);
    if (session === undefined) return null;
    const now = this.now();
    if (now - session.lastSeenAt > this.idleMs) {
      this.byId.delete(id);
      return 'expired';
    }
    // Re-inserted so the map stays ordered by last use and pruning looks at the front only.
    session.lastSeenAt = now;
    this.byId.delete(id);
    this.byId.set(id, session);
    return session;
  }

  end(id: string): void {
    this.byId.delete(id);
  }

  private prune(): void {
    const now = this.now();
    let budget = PRUNE_BATCH;
    for (const [id, session] of this.byId) {
      if (budget-- === 0 || now - session.lastSeenAt <= this.idleMs) return;
      this.byId.delete(id);
    }
  }
}

/** The cookies of a request (no library: the website sets three plain cookies). */
export function readCookies(header: string | undefined): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq <= 0) continue;
    const name = part.slice(0, eq).trim();
    try {
      out.set(name, decodeURIComponent(part.slice(eq + 1).trim()));
    } catch {
      // A malformed value is ignored, as browsers' servers usually do.
    }
  }
  return out;
}

/** One Set-Cookie value scoped to the website's path; `maxAgeS` null makes a browser-session cookie. */
export function cookie(name: string, value: string, path: string, maxAgeS: number | null): string {
  const age = maxAgeS === null ? '' : `; Max-Age=${Math.max(0, Math.floor(maxAgeS))}`;
  return `${name}=${encodeURIComponent(value)}; Path=${path}; HttpOnly; SameSite=Lax${age}`;
}
