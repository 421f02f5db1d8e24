import type { FastifyInstance } from 'fastify';
import { ApiError, type ErrorDetail } from '../core/errors.js';

/**
 * Text no store keeps as sent: NUL (PostgreSQL refuses it in text, SQLite keeps it) and UTF-16
 * surrogates without their pair (both drivers turn them into U+FFFD, so the stored text differs).
 */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

const unstorableText = (text: string) => text.includes('\0') || LONE_SURROGATE.test(text);

const MESSAGE = 'must not contain NUL characters or unpaired UTF-16 surrogates';

const escapePointer = (key: string) => key.replaceAll('~', '~0').replaceAll('/', '~1');

/** JSON pointers (under `base`) of every key or string value in `value` that holds unstorable text. */
function unstorable(value: unknown, base: string, found: ErrorDetail[], depth = 0): void {
  if (found.length >= 10 || depth > 32) return;
  if (typeof value === 'string') {
    if (unstorableText(value)) found.push({ path: base || '/', message: MESSAGE });
    return;
  }
  if (typeof value !== 'object' || value === null) return;
  for (const [key, item] of Object.entries(value)) {
    const path = `${base}/${escapePointer(key)}`;
    if (unstorableText(key)) found.push({ path, message: `the field name ${MESSAGE}` });
    else unstorable(item, path, found, depth + 1);
  }
}

function refuse(found: ErrorDetail[]): void {
  if (found.length > 0)
    throw new ApiError('VALIDATION_FAILED', 'the request holds text that cannot be stored', { details: found });
}

/**
 * Refuses, on every route, path parameters, query values and body strings (field names included)
 * that hold text the stores cannot keep: `400 VALIDATION_FAILED` naming each field, the same on
 * SQLite and PostgreSQL. The URL is checked first of all (an auth hook may look an id up), the body
 * once it is read.
 */
export function installTextGuard(app: FastifyInstance): void {
  app.addHook('onRequest', async (request) => {
    const found: ErrorDetail[] = [];
    unstorable(request.params, '/params', found);
    unstorable(request.query, '/querystring', found);
    refuse(found);
  });
  app.addHook('preValidation', async (request) => {
    const found: ErrorDetail[] = [];
    unstorable(request.body, '', found);
    refuse(found);
  });
}
