import type { FastifyReply } from 'fastify';
import type { Bus } from '../events/bus.js';

/**
 * An AbortSignal that fires when the client goes away or the server shuts down. (The response's
 * `close`, not the request's: the request emits `close` as soon as its body has been read.)
 */
export function requestSignal(reply: FastifyReply, shutdown: AbortSignal): AbortSignal {
  // Not AbortSignal.any: on Node 20 it keeps every combined signal alive as long as the long-lived
  // shutdown signal, one entry per request, for the life of the process.
  const controller = new AbortController();
  const onShutdown = () => controller.abort();
  if (shutdown.aborted) controller.abort();
  else shutdown.addEventListener('abort', onShutdown, { once: true });
  reply.raw.once('close', () => {
    shutdown.removeEventListener('abort', onShutdown);
    controller.abort();
  });
  return controller.signal;
}

/**
 * Long-poll: re-reads `read()` on every wake-up of `topic` (and at least every `pollMs`) until `changed`
 * says so or `timeoutMs` passes; returns the last value read.
 */
export async function waitForChange<T>(options: {
  bus: Bus;
  topic: string;
  timeoutMs: number;
  pollMs: number;
  signal: AbortSignal;
  read: () => Promise<T>;
  changed: (value: T) => boolean;
}): Promise<T> {
  const deadline = Date.now() + options.timeoutMs;
  for (;;) {
    const remaining = deadline - Date.now();
    const waiter = options.bus.waiter(options.topic, Math.max(0, Math.min(remaining, options.pollMs)), options.signal);
    const value = await options.read();
    if (options.changed(value) || remaining <= 0 || options.signal.aborted) {
      waiter.cancel();
      return value;
    }
    await waiter.promise;
  }
}
