import AjvModule from 'ajv';
import addFormatsModule from 'ajv-formats';
import type { FastifyInstance } from 'fastify';

// ajv and ajv-formats ship CommonJS with a default export.
const Ajv = AjvModule.default ?? AjvModule;
const addFormats = addFormatsModule.default ?? addFormatsModule;

/**
 * Bodies are validated strictly (no type coercion, unknown fields refused): a client that sends
 * `"3"` for a number or a misspelt field learns it at once. Query strings and path parameters are
 * always text, so they are coerced.
 */
export function installValidators(app: FastifyInstance): void {
  // verbose: errors carry the value sent, so a refused enum value can be named in the answer.
  const common = { allErrors: true, useDefaults: true, removeAdditional: false, strict: false, verbose: true } as const;
  const strict = new Ajv({ ...common, coerceTypes: false });
  const coercing = new Ajv({ ...common, coerceTypes: 'array' });
  addFormats(strict);
  addFormats(coercing);
  app.setValidatorCompiler(({ schema, httpPart }) =>
    httpPart === 'body' ? strict.compile(schema) : coercing.compile(schema),
  );
}
