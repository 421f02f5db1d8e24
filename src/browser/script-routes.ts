import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { unwrap } from '../http/errors.js';
import { errorResponses, Nullable } from '../http/schemas.js';
import { MAX_SCRIPT_BYTES } from './inspect.js';
import { ScriptParams, ScriptSchema } from './schemas.js';
import type { ScriptAction, ScriptCatalog } from './scripts.js';

const tags = ['banks'];
const security = [{ apiKey: [] }];
const BankParams = Type.Object({ id: Type.String({ maxLength: 64 }) }, { additionalProperties: false });
const DESCRIPTION =
  'Instance administration (bank scripts run for every organization): needs a key with the `instance:admin` scope. See docs/browser-scripts.md.';

/** `/v1/banks/:id/scripts…`: versioned bank scripts (API keys only). */
export function scriptRoutes(deps: { browserScripts: ScriptCatalog }): FastifyPluginAsyncTypebox {
  const scripts = deps.browserScripts;
  return async (app) => {
    app.get(
      '/banks/:id/scripts',
      {
        config: { scopes: ['instance:admin'] },
        schema: {
          tags,
          security,
          summary: "A bank's script versions, newest first",
          description: DESCRIPTION,
          params: BankParams,
          response: { 200: Type.Object({ data: Type.Array(ScriptSchema) }), ...errorResponses(403, 404) },
        },
      },
      async (request) => ({ data: unwrap(await scripts.list(request.params.id)) }),
    );

    app.post(
      '/banks/:id/scripts',
      {
        config: { scopes: ['instance:admin'] },
        schema: {
          tags,
          security,
          summary: 'Push a new script version (a draft)',
          description: `${DESCRIPTION} The module is loaded in a throwaway worker to read its bank, version and credential fields; it must name this bank and a version the bank has not had.`,
          params: BankParams,
          body: Type.Object(
            { source: Type.String({ minLength: 1, maxLength: MAX_SCRIPT_BYTES }) },
            { additionalProperties: false },
          ),
          response: { 201: ScriptSchema, ...errorResponses(400, 403, 404, 409) },
        },
      },
      async (request, reply) =>
        reply.status(201).send(unwrap(await scripts.create(request.params.id, request.body.source))),
    );

    app.get(
      '/banks/:id/scripts/:version',
      {
        config: { scopes: ['instance:admin'] },
        schema: {
          tags,
          security,
          summary: 'One script version with its source',
          description: DESCRIPTION,
          params: ScriptParams,
          response: { 200: ScriptSchema, ...errorResponses(403, 404) },
        },
      },
      async (request) => unwrap(await scripts.read(request.params.id, request.params.version)),
    );

    const actions: Array<{ action: ScriptAction; summary: string }> = [
      { action: 'review', summary: 'Send a draft to review' },
      {
        action: 'promote',
        summary: 'Make a reviewed (or deprecated) version the active one; the previous active one is deprecated',
      },
      {
        action: 'deprecate',
        summary: 'Retire a draft or reviewed version (the active one is replaced by promoting another)',
      },
    ];
    for (const { action, summary } of actions) {
      app.post(
        `/banks/:id/scripts/:version/${action}`,
        {
          config: { scopes: ['instance:admin'] },
          schema: {
            tags,
            security,
            summary,
            description: DESCRIPTION,
            params: ScriptParams,
            response: { 200: ScriptSchema, ...errorResponses(403, 404, 409) },
          },
        },
        async (request) => unwrap(await scripts.change(request.params.id, request.params.version, action)),
      );
    }

    app.put(
      '/banks/:id/scripts/pins/:account_id',
      {
        config: { scopes: ['instance:admin'] },
        schema: {
          tags,
          security,
          summary: 'Pin an account to a script version (null: follow the active one)',
          description: `${DESCRIPTION} A pinned account runs that version (a draft or one in review too), to try it against one real login before promoting it.`,
          params: Type.Object(
            { id: Type.String({ maxLength: 64 }), account_id: Type.String({ maxLength: 64 }) },
            { additionalProperties: false },
          ),
          body: Type.Object({ version: Nullable(Type.String({ maxLength: 64 })) }, { additionalProperties: false }),
          response: {
            200: Type.Object({ account_id: Type.String(), version: Nullable(Type.String()) }),
            ...errorResponses(400, 403, 404, 409),
          },
        },
      },
      async (request) => unwrap(await scripts.pin(request.params.id, request.params.account_id, request.body.version)),
    );
  };
}
