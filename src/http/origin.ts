import type { FastifyRequest } from 'fastify';

declare module 'fastify' {
  interface FastifyInstance {
    /** OTPILOT_PUBLIC_URL's origin, or null to read it from each request. */
    configuredOrigin: string | null;
  }
}

/**
 * The origin clients use to reach us: OTPILOT_PUBLIC_URL when set; otherwise scheme and host as the
 * request carries them (with OTPILOT_TRUST_PROXY, the proxy's `X-Forwarded-Proto`/`X-Forwarded-Host`),
 * which a client chooses. Same-origin checks compare against it, and Twilio signs the URL it called,
 * so it must be the public one.
 */
export function publicOrigin(request: FastifyRequest): string {
  return request.server.configuredOrigin ?? `${request.protocol}://${request.host}`;
}
