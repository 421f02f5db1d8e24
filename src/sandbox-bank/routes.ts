import { randomBytes } from 'node:crypto';
import type { FastifyError, FastifyPluginAsync, FastifyReply, FastifyRequest, FastifySchema } from 'fastify';
import { makeForwardConfig } from './forward.js';
import { DAY_MS, endOfDay, parseIsoDate } from './movements.js';
import { contentSecurityPolicy, inboxPage, portalPage } from './pages.js';
import type { BankReply, BankState } from './state.js';
import { behaviourOf, normalizeUsername, phoneOf } from './users.js';
import { type WebOptions, webRoutes } from './web/routes.js';

/**
 * Options of every route, fresh per route so no host hook can share mutations between them: hidden from the host's
 * OpenAPI document (swagger reads `schema.hide`), skipped by the host's auth hook (`config.public`), and exempt from
 * a global @fastify/rate-limit (`config.rateLimit`), because benchmarks drive thousands of logins a second here.
 */
function route() {
  return {
    schema: { hide: true } as FastifySchema,
    config: { public: true as const, rateLimit: false as const },
  };
}

const MAX_FIELD = 256;
/** Default history when a transactions call names no range. */
const DEFAULT_RANGE_DAYS = 90;

type Fields = Record<string, unknown>;

function fail(reply: FastifyReply, status: number, kind: string, message: string): FastifyReply {
  return reply.code(status).send({ error: kind, message });
}

function send(reply: FastifyReply, result: BankReply): FastifyReply {
  return reply.code(result.status).send(result.body);
}

function fields(body: unknown): Fields | null {
  return typeof body === 'object' && body !== null && !Array.isArray(body) ? (body as Fields) : null;
}

/** A required non-empty string field, or an error message. */
function text(body: Fields, name: string): string | { problem: string } {
  const value = body[name];
  if (typeof value !== 'string' || value.length === 0) return { problem: `${name} must be a non-empty string` };
  if (value.length > MAX_FIELD) return { problem: `${name} is too long` };
  return value;
}

function bearer(request: FastifyRequest): string | null {
  const header = request.headers.authorization;
  if (typeof header !== 'string') return null;
  const match = /^Bearer\s+(\S+)$/i.exec(header);
  return match?.[1] ?? null;
}

/** Fastify's own 4xx errors (bad JSON, wrong content type, size) in this plugin's error shape. */
function kindOf(status: number): string {
  switch (status) {
    case 404:
      return 'not_found';
    case 413:
      return 'payload_too_large';
    case 415:
      return 'unsupported_media_type';
    case 429:
      return 'rate_limited';
    default:
      return 'invalid_request';
  }
}

/** The sandbox bank's HTTP surface over one `BankState`. Routes are relative; the host picks the prefix. */
export function bankRoutes(state: BankState, web: WebOptions): FastifyPluginAsync {
  return async (app) => {
    const prefix = app.prefix;

    // Own handlers, so the bank answers in its own shape whatever the host's global handlers do.
    app.setErrorHandler((err: FastifyError, _request, reply) => {
      const status =
        err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
      if (status === 500) return fail(reply, 500, 'internal', 'the sandbox bank failed');
      return fail(reply, status, kindOf(status), err.message);
    });
    app.setNotFoundHandler((_request, reply) => fail(reply, 404, 'not_found', 'no such sandbox bank route'));

    // ---- bank API -------------------------------------------------------------------------------------------

    app.post('/api/login', route(), async (request, reply) => {
      const body = fields(request.body);
      if (body === null) return fail(reply, 400, 'invalid_request', 'a JSON object body is required');
      const username = text(body, 'username');
      if (typeof username !== 'string') return fail(reply, 400, 'invalid_request', username.problem);
      const password = text(body, 'password');
      if (typeof password !== 'string') return fail(reply, 400, 'invalid_request', password.problem);
      const trust = body['trust_token'];
      if (trust !== undefined && trust !== null && typeof trust !== 'string') {
        return fail(reply, 400, 'invalid_request', 'trust_token must be a string');
      }
      return send(reply, await state.login(normalizeUsername(username), password, trust ?? null));
    });

    app.post<{ Params: { id: string } }>('/api/challenges/:id/verify', route(), async (request, reply) => {
      const body = fields(request.body);
      if (body === null) return fail(reply, 400, 'invalid_request', 'a JSON object body is required');
      const code = text(body, 'code');
      if (typeof code !== 'string') return fail(reply, 400, 'invalid_request', code.problem);
      return send(reply, await state.verify(request.params.id, code));
    });

    app.post<{ Params: { id: string } }>('/api/challenges/:id/resend', route(), async (request, reply) =>
      send(reply, await state.resend(request.params.id)),
    );

    app.get<{ Params: { id: string } }>('/api/challenges/:id', route(), async (request, reply) =>
      send(reply, await state.status(request.params.id)),
    );

    app.delete<{ Params: { id: string } }>('/api/challenges/:id', route(), async (request, reply) =>
      send(reply, await state.cancel(request.params.id)),
    );

    const authenticated = (request: FastifyRequest, reply: FastifyReply) => {
      const token = bearer(request);
      const user = token === null ? null : state.sessionUser(token);
      if (user === null) {
        reply.header('www-authenticate', 'Bearer');
        fail(reply, 401, 'unauthorized', 'a valid session token is required');
      }
      return user;
    };

    app.get('/api/identity', route(), async (request, reply) => {
      const user = authenticated(request, reply);
      return user === null ? reply : send(reply, await state.identity(user));
    });

    // Keeps the session alive (its lifetime starts again); 401 once it has ended.
    app.get('/api/session', route(), async (request, reply) => {
      const token = bearer(request);
      const alive = token === null ? null : state.keepAlive(token);
      if (alive === null) {
        reply.header('www-authenticate', 'Bearer');
        return fail(reply, 401, 'unauthorized', 'a valid session token is required');
      }
      return reply.send({ status: 'ok', ...alive });
    });

    // The bank logs a user out everywhere (a test control, like the phone's).
    app.delete<{ Params: { username: string } }>('/sessions/:username', route(), async (request, reply) =>
      reply.send({ ended: state.endSessions(normalizeUsername(request.params.username)) }),
    );

    app.get('/api/accounts', route(), async (request, reply) => {
      const user = authenticated(request, reply);
      return user === null ? reply : send(reply, await state.accounts(user));
    });

    app.get<{ Params: { id: string }; Querystring: Record<string, unknown> }>(
      '/api/accounts/:id/transactions',
      route(),
      async (request, reply) => {
        const user = authenticated(request, reply);
        if (user === null) return reply;
        const { from, to } = request.query;
        const toMs = to === undefined ? Math.floor(state.now() / DAY_MS) * DAY_MS : parseDate(to);
        if (toMs === null) return fail(reply, 400, 'invalid_request', 'to must be a date (YYYY-MM-DD)');
        const fromMs = from === undefined ? toMs - DEFAULT_RANGE_DAYS * DAY_MS : parseDate(from);
        if (fromMs === null) return fail(reply, 400, 'invalid_request', 'from must be a date (YYYY-MM-DD)');
        if (fromMs > toMs) return fail(reply, 400, 'invalid_request', 'from must not be after to');
        return send(reply, await state.transactions(user, request.params.id, fromMs, endOfDay(toMs)));
      },
    );

    // ---- phone ----------------------------------------------------------------------------------------------

    app.get<{ Params: { username: string } }>('/phone/:username', route(), async (request, reply) => {
      const phone = state.phone(normalizeUsername(request.params.username));
      return phone === null ? fail(reply, 404, 'not_found', 'the bank has no such user') : reply.send(phone);
    });

    app.post<{ Params: { username: string } }>('/phone/:username/approve', route(), async (request, reply) =>
      send(reply, state.approve(normalizeUsername(request.params.username))),
    );

    app.put<{ Params: { username: string } }>('/phone/:username/forward', route(), async (request, reply) => {
      const body = fields(request.body);
      if (body === null) return fail(reply, 400, 'invalid_request', 'a JSON object body is required');
      const url = body['url'];
      if (typeof url !== 'string' || !isHttpUrl(url)) {
        return fail(reply, 400, 'invalid_request', 'url must be an http(s) URL');
      }
      const format = body['format'] ?? 'json';
      if (format !== 'twilio' && format !== 'json') {
        return fail(reply, 400, 'invalid_request', 'format must be "twilio" or "json"');
      }
      const authToken = body['auth_token'] ?? null;
      if (authToken !== null && (typeof authToken !== 'string' || authToken.length === 0)) {
        return fail(reply, 400, 'invalid_request', 'auth_token must be a non-empty string');
      }
      const username = normalizeUsername(request.params.username);
      if (!state.setForward(username, makeForwardConfig(url, format, authToken))) {
        return fail(reply, 404, 'not_found', 'the bank has no such user');
      }
      return reply.send({ forwarding: true, url, format });
    });

    app.delete<{ Params: { username: string } }>('/phone/:username/forward', route(), async (request, reply) => {
      if (!state.setForward(normalizeUsername(request.params.username), null)) {
        return fail(reply, 404, 'not_found', 'the bank has no such user');
      }
      return reply.send({ forwarding: false });
    });

    // ---- pages ----------------------------------------------------------------------------------------------

    const html = (reply: FastifyReply, render: (nonce: string) => string) => {
      const nonce = randomBytes(16).toString('base64');
      return reply
        .header('content-security-policy', contentSecurityPolicy(nonce))
        .header('cache-control', 'no-store')
        .type('text/html; charset=utf-8')
        .send(render(nonce));
    };

    app.get('/', route(), async (_request, reply) => html(reply, (nonce) => portalPage(prefix, nonce)));

    app.get<{ Params: { username: string } }>('/phone/:username/inbox', route(), async (request, reply) => {
      const username = normalizeUsername(request.params.username);
      if (behaviourOf(username) === null) return fail(reply, 404, 'not_found', 'the bank has no such user');
      return html(reply, (nonce) => inboxPage(prefix, username, phoneOf(username), nonce));
    });

    // The website, in its own encapsulated plugin (it parses form posts; the API does not); registered
    // last so it inherits the handlers above.
    await app.register(webRoutes(state, web), { prefix: '/web' });
  };
}

function parseDate(value: unknown): number | null {
  return typeof value === 'string' ? parseIsoDate(value) : null;
}

function isHttpUrl(value: string): boolean {
  try {
    const url = new URL(value);
    return url.protocol === 'http:' || url.protocol === 'https:';
  } catch {
    return false;
  }
}
