import type { FastifyRequest } from 'fastify';

/**
 * The origin a client used to reach us: scheme and host as the request carries them, which with
 * OTPILOT_TRUST_PROXY are the proxy's `X-Forwarded-Proto`/`X-Forwarded-Host`. Twilio signs the URL it
 * called, so this must be the public one.
 */
export function publicOrigin(request: FastifyRequest): string {
  return `${request.protocol}://${request.host}`;
}
