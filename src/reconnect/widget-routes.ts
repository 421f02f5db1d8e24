import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { ApiError } from '../core/errors.js';
import { unwrap } from '../http/errors.js';
import { publicOrigin } from '../http/origin.js';
import { errorResponses } from '../http/schemas.js';
import type { Db } from '../store/db.js';
import { type AppToken, findAppToken } from './app-tokens.js';
import { ReconnectViewSchema } from './schemas.js';
import type { ReconnectService } from './service.js';

declare module 'fastify' {
  interface FastifyRequest {
    appToken: AppToken | null;
  }
}

/** Built by `npm run build` (Vite, one IIFE file). */
const WIDGET_FILE = fileURLToPath(new URL('../../dist/widget/widget.js', import.meta.url));

const Params = Type.Object({ id: Type.String({ maxLength: 64 }) }, { additionalProperties: false });

/**
 * The widget's endpoints (`/widget/v1/reconnects/:id…`): the only ones an app token opens. Each
 * request must carry a live token in `x-app-token`; a browser request from another origin must come
 * from one of the token's allowed origins, and only those get `Access-Control-Allow-Origin` (CORS),
 * so another site can neither read nor act. Preflights are answered for any origin: they carry no
 * token, and the real request is checked.
 */
export function widgetRoutes(deps: { db: Db; reconnects: ReconnectService }): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.decorateRequest('appToken', null);
    app.addHook('onRequest', async (request, reply) => {
      const origin = request.headers.origin;
      if (request.method === 'OPTIONS') {
        if (origin) {
          reply.header('access-control-allow-origin', origin);
          reply.header('access-control-allow-methods', 'GET, POST');
          reply.header('access-control-allow-headers', 'content-type, x-app-token');
          reply.header('access-control-max-age', '600');
          reply.header('vary', 'Origin');
        }
        return;
      }
      const token = await findAppToken(deps.db, String(request.headers['x-app-token'] ?? ''));
      if (!token) throw new ApiError('UNAUTHORIZED', 'send a live app token in the x-app-token header');
      if (origin && origin !== publicOrigin(request)) {
        if (!token.origins.includes(origin.toLowerCase())) {
          throw new ApiError('FORBIDDEN', 'this origin is not in the app token’s allowed origins');
        }
        reply.header('access-control-allow-origin', origin);
        reply.header('vary', 'Origin');
      }
      request.appToken = token;
    });

    app.options('/reconnects/*', { config: { public: true }, schema: { hide: true } }, async (_request, reply) =>
      reply.status(204).send(),
    );

    const token = (request: FastifyRequest) => {
      if (!request.appToken) throw new Error('widget route without a token');
      return request.appToken;
    };
    const common = { tags: ['reconnect'], params: Params };
    // The app token is public, so guessing and hammering are bounded per token and address.
    const limit = (max: number) => ({
      max,
      timeWindow: 60_000,
      keyGenerator: (request: FastifyRequest) => `widget:${request.headers['x-app-token'] ?? '-'}:${request.ip}`,
    });

    app.get(
      '/reconnects/:id',
      {
        config: { public: true, rateLimit: limit(120) },
        schema: {
          ...common,
          summary: 'A reconnect, as the widget shows it (app token)',
          response: { 200: ReconnectViewSchema, ...errorResponses(401, 403, 404, 410, 429) },
        },
      },
      async (request) => unwrap(await deps.reconnects.view(token(request), request.params.id)),
    );

    app.post(
      '/reconnects/:id/start',
      {
        config: { public: true, rateLimit: limit(10) },
        schema: {
          ...common,
          summary: 'Start a fresh login for a reconnect whose last login ended (app token)',
          response: { 200: ReconnectViewSchema, ...errorResponses(401, 403, 404, 410, 429) },
        },
      },
      async (request) => unwrap(await deps.reconnects.start(token(request), request.params.id)),
    );

    app.post(
      '/reconnects/:id/code',
      {
        config: {
          public: true,
          rateLimit: {
            max: 10,
            timeWindow: 60_000,
            keyGenerator: (request: FastifyRequest) => `widget:${(request.params as { id: string }).id}`,
          },
        },
        schema: {
          ...common,
          summary: "The owner's code for a reconnect (app token)",
          description: 'Waits (≤ 20 s) for the bank: `outcome` is accepted, rejected or pending.',
          body: Type.Object({ code: Type.String({ minLength: 1, maxLength: 64 }) }, { additionalProperties: false }),
          response: {
            200: Type.Object({
              outcome: Type.Union([
                Type.Literal('accepted'),
                Type.Literal('rejected'),
                Type.Literal('withdrawn'),
                Type.Literal('pending'),
              ]),
              reconnect: ReconnectViewSchema,
            }),
            ...errorResponses(400, 401, 403, 404, 409, 410, 422, 429),
          },
        },
      },
      async (request) => unwrap(await deps.reconnects.submit(token(request), request.params.id, request.body.code)),
    );
  };
}

/** `/widget.js` and the `/widget-demo` page (same origin, against the sandbox bank). */
export function widgetAssetRoutes(): FastifyPluginAsyncTypebox {
  return async (app) => {
    const page = { config: { public: true }, schema: { hide: true } };
    // Read once: the file only changes with a new build, which means a restart.
    const script = existsSync(WIDGET_FILE) ? readFileSync(WIDGET_FILE, 'utf8') : null;
    app.get('/widget.js', page, async (_request, reply) => {
      if (script === null) {
        return reply
          .status(503)
          .type('text/plain; charset=utf-8')
          .send('The widget is not built: run `npm run build`.');
      }
      reply.header('cache-control', 'public, max-age=300');
      reply.header('access-control-allow-origin', '*');
      return reply.type('text/javascript; charset=utf-8').send(script);
    });
    app.get('/widget-demo', page, async (_request, reply) => {
      const nonce = randomBytes(16).toString('base64');
      reply.header(
        'content-security-policy',
        `default-src 'self'; script-src 'self' 'nonce-${nonce}'; style-src 'unsafe-inline'`,
      );
      return reply.type('text/html; charset=utf-8').send(demoPage(nonce));
    });
  };
}

function demoPage(nonce: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>otpilot reconnect widget demo</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem}label{display:block;font-weight:600;margin-top:.75rem}input{width:100%;font:inherit;padding:.4rem}button{margin-top:1rem;font:inherit;padding:.5rem 1rem}pre{background:#f3f4f6;padding:.75rem;white-space:pre-wrap}</style>
</head><body>
<h1>Reconnect widget demo</h1>
<p>An integrator's page embeds <code>&lt;script src="/widget.js"&gt;</code> and calls
<code>otpilot.reconnect({ app_token, reconnect_id, sandbox: true, onSuccess, onError, onClose })</code>.
Get a <code>reconnect_id</code> from a data call that answered <code>RECONNECT_REQUIRED</code>
(for example <code>GET /v1/accounts/:id/balances?refresh=true</code> on a sandbox account of the user
<code>corporate</code> or <code>otp</code>), and an app token from <code>POST /v1/app-tokens</code>.
The sandbox bank's phone page (<code>/sandbox-bank/phone/&lt;username&gt;/inbox</code>) shows the code.</p>
<form id="demo">
<label for="token">App token</label><input id="token" name="app_token" required autocomplete="off">
<label for="reconnect">Reconnect id</label><input id="reconnect" name="reconnect_id" required autocomplete="off">
<button type="submit">Reconnect</button>
</form>
<h2>Callbacks</h2>
<pre id="log" aria-live="polite"></pre>
<script src="/widget.js"></script>
<script nonce="${nonce}">
const params = new URLSearchParams(location.search);
const form = document.getElementById('demo');
const log = (line) => { document.getElementById('log').textContent += line + '\\n'; };
form.app_token.value = params.get('app_token') || '';
form.reconnect_id.value = params.get('reconnect_id') || '';
form.addEventListener('submit', (event) => {
  event.preventDefault();
  otpilot.reconnect({
    app_token: form.app_token.value.trim(),
    reconnect_id: form.reconnect_id.value.trim(),
    sandbox: true,
    onSuccess: (result) => log('onSuccess ' + JSON.stringify(result)),
    onError: (error) => log('onError ' + JSON.stringify(error)),
    onClose: () => log('onClose'),
  });
});
</script>
</body></html>`;
}
