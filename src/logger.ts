import pino, { type Logger } from 'pino';
import type { LogLevel } from './config.js';

/**
 * Paths pino censors wherever they appear (one level deep and in request headers). Secrets should
 * never be logged in the first place; this is the net under that rule.
 */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers["x-api-key"]',
  'req.headers.cookie',
  'headers.authorization',
  '*.password',
  '*.code',
  '*.credentials',
  '*.totp_secret',
  '*.token',
  '*.key',
  '*.secret',
  '*.auth_token',
  '*.notification_auth_token',
  '*.webhook_auth_token',
  'password',
  'code',
  'credentials',
  'token',
  'key',
  'secret',
];

export function makeLogger(level: LogLevel, destination?: pino.DestinationStream): Logger {
  return pino(
    { level, redact: { paths: REDACT_PATHS, censor: '[redacted]' }, base: { service: 'otpilot' } },
    destination,
  );
}
