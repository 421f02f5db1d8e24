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

/**
 * `urgent`: a call a person is waiting on (a code to verify, an approval to check). It goes through
 * connections of its own, so it never queues behind the bulk of logins' data calls.
 */
export type BankFetch = (url: URL | string, init?: RequestInit, options?: { urgent?: boolean }) => Promise<Response>;

/**
 * A fetch whose calls queue in this process beyond `connectionsPerOrigin` open connections. Node's
 * default agent opens a connection per call at once: a burst of thousands of logins opened thousands
 * of sockets together, and on a busy event loop their connect timers (10 s) fired before the
 * connections were ever served, failing logins `bank_unavailable` for our own overload. Here a
 * queued call has no timer running; connect and answer timeouts start when it actually goes out.
 * The login's own signal (cancel, the watchdog's call limit) still ends a queued call.
 */
export function makeBankFetch(options: BankHttpOptions = {}): BankFetch {
  const connections = options.connectionsPerOrigin ?? 64;
  const agentOf = (n: number) =>
    new Agent({
      connections: n,
      connect: { timeout: options.connectTimeoutMs ?? 10_000 },
      headersTimeout: options.answerTimeoutMs ?? 120_000,
      bodyTimeout: options.answerTimeoutMs ?? 120_000,
    });
  const bulk = agentOf(connections);
  // A quarter as many again (at least 2) for the calls a person waits on.
  const urgent = agentOf(Math.max(2, Math.ceil(connections / 4)));
  return (url, init, call) => fetch(url, { ...init, dispatcher: call?.urgent ? urgent : bulk });
}
