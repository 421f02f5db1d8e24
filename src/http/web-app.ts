import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';

/** Where `npm run build` puts the dashboard (same path from src/http and dist/http). */
export const DASHBOARD_DIR = fileURLToPath(new URL('../../dist/dashboard/', import.meta.url));

/** The page may talk only to us; the QR code is inline SVG, the styles one file. */
const CSP = [
  "default-src 'self'",
  "img-src 'self' data:",
  "style-src 'self' 'unsafe-inline'",
  "connect-src 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
  "form-action 'self'",
].join('; ');

/**
 * Serves the operator web app at /app/: hashed assets cached for a year, index.html never cached,
 * and every other /app/… path answered with index.html so deep links and reloads work.
 */
export async function installWebApp(app: FastifyInstance, dir = DASHBOARD_DIR): Promise<void> {
  const built = existsSync(`${dir}/index.html`);
  await app.register(async (web) => {
    web.addHook('onSend', async (_request, reply) => {
      reply.header('content-security-policy', CSP);
      reply.header('x-content-type-options', 'nosniff');
      reply.header('referrer-policy', 'same-origin');
      reply.header('x-frame-options', 'DENY');
    });
    if (built) {
      await web.register(fastifyStatic, {
        root: dir,
        prefix: '/app/',
        index: false,
        wildcard: false,
        decorateReply: true,
        cacheControl: false,
        setHeaders: (reply, path) => {
          reply.header('cache-control', path.includes('/assets/') ? 'public, max-age=31536000, immutable' : 'no-cache');
        },
      });
    }
    const page = { config: { public: true }, schema: { hide: true } };
    web.get('/app/*', page, async (_request, reply) => {
      if (!built) {
        return reply
          .status(503)
          .type('text/plain; charset=utf-8')
          .send('The dashboard is not built. Run `npm run build` (npm start does it for you).');
      }
      reply.header('cache-control', 'no-cache');
      return reply.sendFile('index.html');
    });
    web.get('/app', page, async (_request, reply) => reply.redirect('/app/'));
    web.get('/', page, async (_request, reply) => reply.redirect('/app/'));
  });
}
