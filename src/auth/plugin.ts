import cookie from '@fastify/cookie';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ApiError } from '../core/errors.js';
import { publicOrigin } from '../http/origin.js';
import type { Role } from './roles.js';
import type { AuthService, UserView } from './service.js';

export const SESSION_COOKIE = 'otpilot_session';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Any signed-in user (routes that need no scope, such as /me). */
    signedIn?: boolean;
    /** Dashboard-only routes gated by role rather than scope (users, audit). */
    roles?: Role[];
  }
  interface FastifyRequest {
    user: UserView | null;
    sessionToken: string | null;
  }
}

const UNSAFE = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/**
 * A cookie rides along on any request the browser makes, including ones another site triggers, so an
 * unsafe request authenticated by the cookie must come from our own origin (docs/security.md: Origin or
 * Sec-Fetch-Site). `Sec-Fetch-Site: none` (typed in the address bar, opened from a bookmark or another
 * program) is not same-origin either. Bearer tokens are not ambient and need no such check.
 */
function sameOrigin(request: FastifyRequest): boolean {
  const origin = request.headers.origin;
  if (origin) return origin === publicOrigin(request);
  return request.headers['sec-fetch-site'] === 'same-origin';
}

/**
 * Session authentication for the dashboard API (paths without /v1): the `otpilot_session` cookie or
 * `Authorization: Bearer ots_…`. The routes' own scopes are checked against the user's role, so the
 * dashboard mounts the very routes of /v1. API keys are refused here, as sessions are on /v1.
 */
export async function installSessionAuth(app: FastifyInstance, auth: AuthService): Promise<void> {
  await app.register(cookie);
  app.decorateRequest('user', null);
  app.decorateRequest('sessionToken', null);
  app.addHook('onRequest', async (request) => {
    const config = request.routeOptions.config;
    if (request.routeOptions.url === undefined || config.public) return;
    const bearer = /^Bearer\s+(\S+)$/i.exec(request.headers.authorization ?? '')?.[1];
    const token = bearer ?? request.cookies[SESSION_COOKIE];
    if (!token) throw new ApiError('UNAUTHORIZED', 'sign in first: POST /auth/login');
    const signedIn = await auth.authenticate(token);
    if (!signedIn) throw new ApiError('UNAUTHORIZED', 'the session has ended or is unknown; sign in again');
    if (!bearer && UNSAFE.has(request.method) && !sameOrigin(request)) {
      throw new ApiError(
        'FORBIDDEN',
        "cross-site request refused: a write signed in by cookie needs this server's Origin (or Sec-Fetch-Site: same-origin)",
      );
    }
    const scopes = config.scopes;
    if (config.roles) {
      if (!config.roles.includes(signedIn.user.role))
        throw new ApiError('FORBIDDEN', `the ${signedIn.user.role} role may not do this`);
    } else if (!config.signedIn) {
      if (!scopes || scopes.length === 0) throw new ApiError('FORBIDDEN', 'this route is not open to dashboard users');
      if (!scopes.some((scope) => signedIn.principal.scopes.has(scope))) {
        throw new ApiError('FORBIDDEN', `the ${signedIn.user.role} role may not do this`);
      }
    }
    request.principal = signedIn.principal;
    request.user = signedIn.user;
    request.sessionToken = token;
  });
}
