import type { FastifyReply } from 'fastify';

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
