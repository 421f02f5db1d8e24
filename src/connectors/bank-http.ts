import { Agent, fetch, type RequestInit, type Response } from 'undici';

/** How a connector's HTTP calls to its bank go out (one per process, shared by every login). */
export interface BankHttpOptions {
  /** Connections open at once to one bank origin; further calls wait in this process [64] (OTPILOT_BANK_CONNECTIONS). */
  connectionsPerOrigin?: number;
  /** Opening one connection may take this long, ms [10000]. */
  connectTimeoutMs?: number;
  /** The bank's answer (headers, then each body chunk) may take this long once the call went out, ms [120000]. */
  answerTimeoutMs?: number;
}

export type BankFetch = (url: URL | string, init?: RequestInit) => Promise<Response>;

/**
 * A fetch whose calls queue in this process beyond `connectionsPerOrigin` open connections. Node's
 * default agent opens a connection per call at once: a burst of thousands of logins opened thousands
 * of sockets together, and on a busy event loop their connect timers (10 s) fired before the
 * connections were ever served, failing logins `bank_unavailable` for our own overload. Here a
 * queued call has no timer running; connect and answer timeouts start when it actually goes out.
 * The login's own signal (cancel, the watchdog's call limit) still ends a queued call.
 */
export function makeBankFetch(options: BankHttpOptions = {}): BankFetch {
  const agent = new Agent({
    connections: options.connectionsPerOrigin ?? 64,
    connect: { timeout: options.connectTimeoutMs ?? 10_000 },
    headersTimeout: options.answerTimeoutMs ?? 120_000,
    bodyTimeout: options.answerTimeoutMs ?? 120_000,
  });
  return (url, init) => fetch(url, { ...init, dispatcher: agent });
}
