import type { AddressInfo } from 'node:net';
import Fastify, { type FastifyInstance, type FastifyPluginAsync } from 'fastify';

/**
 * A bare Fastify app serving one plugin under `prefix` (the test banks run alone this way), listening on
 * `host:port`; `extra` adds routes before it listens. Resolves with the app and its base URL
 * (`http://host:port<prefix>/`).
 */
export async function listenStandalone(options: {
  plugin: FastifyPluginAsync;
  prefix: string;
  port: number;
  host: string;
  extra?: (app: FastifyInstance) => void;
}): Promise<{ app: FastifyInstance; url: string }> {
  const app = Fastify({ logger: false });
  await app.register(options.plugin, { prefix: options.prefix });
  options.extra?.(app);
  try {
    await app.listen({ port: options.port, host: options.host });
  } catch (err) {
    await app.close();
    throw err;
  }
  const address = app.server.address() as AddressInfo;
  return { app, url: `http://${urlHost(options.host)}:${address.port}${options.prefix}/` };
}

/** A host that clients can dial: wildcards become loopback, IPv6 gets brackets. */
function urlHost(host: string): string {
  if (host === '0.0.0.0' || host === '') return '127.0.0.1';
  if (host === '::') return '[::1]';
  return host.includes(':') ? `[${host}]` : host;
}
