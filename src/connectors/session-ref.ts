/**
 * What the engine tells a built-in connector about the session it runs in, beside the SDK's
 * `LoginContext` (not part of the SDK: third-party connectors neither get nor need it). The browser
 * runtime records the script version and failure evidence under the session with it.
 */
export interface SessionRef {
  sessionId: string;
  orgId: string;
  accountId: string;
}

const KEY = Symbol.for('otpilot.session');

/** Attaches the session to a login context (the runner does this once per login). */
export function withSessionRef<T extends object>(ctx: T, ref: SessionRef): T {
  // Enumerable, so a wrapper that spreads the context (the benchmark's timing one) keeps it.
  Object.defineProperty(ctx, KEY, { value: Object.freeze({ ...ref }), enumerable: true });
  return ctx;
}

export function sessionRefOf(ctx: object): SessionRef | null {
  return (ctx as Record<symbol, SessionRef | undefined>)[KEY] ?? null;
}
