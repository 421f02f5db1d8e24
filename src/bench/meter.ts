import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { RunningServer } from '../server.js';
import { round } from './stats.js';

/** What one phase cost the server under test (this process: the bank and the clients run elsewhere). */
export interface ServerCost {
  /** CPU time of this process (user + system, every thread), ms. */
  cpuMs: number;
  /** HTTP requests the server answered. */
  served: number;
  /** HTTP requests the server made to the bank (the connector's calls). */
  toBank: number;
  /** The event loop's delay meanwhile, p99, ms. */
  loopDelayP99Ms: number;
}

/**
 * Starts counting the server's cost: its process's CPU time, the requests it serves (its HTTP
 * server's `request` events) and the requests it sends to `bankUrl` (undici's diagnostics channel,
 * which the global fetch reports to). `stop()` answers the totals since the start.
 */
export function meterServer(server: RunningServer, bankUrl: string): { stop(): ServerCost } {
  const bankOrigin = new URL(bankUrl).origin;
  let served = 0;
  let toBank = 0;
  const onRequest = () => served++;
  const onOutgoing = (message: unknown) => {
    const origin = (message as { request?: { origin?: string } }).request?.origin;
    if (origin === bankOrigin) toBank++;
  };
  server.app.server.on('request', onRequest);
  subscribe('undici:request:create', onOutgoing);
  const loop = monitorEventLoopDelay({ resolution: 1 });
  loop.enable();
  const cpu = process.cpuUsage();
  return {
    stop() {
      const used = process.cpuUsage(cpu);
      loop.disable();
      server.app.server.off('request', onRequest);
      unsubscribe('undici:request:create', onOutgoing);
      return {
        cpuMs: (used.user + used.system) / 1000,
        served,
        toBank,
        loopDelayP99Ms: round(loop.percentile(99) / 1e6),
      };
    },
  };
}

/** A phase's cost per login, rounded for the report. */
export function perLogin(cost: ServerCost, logins: number) {
  return {
    cpu_ms: round(cost.cpuMs / logins),
    http_requests: round(cost.served / logins, 1),
    bank_requests: round(cost.toBank / logins, 1),
    loop_delay_p99_ms: cost.loopDelayP99Ms,
    logins,
  };
}
