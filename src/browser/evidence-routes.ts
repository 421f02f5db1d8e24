import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { ApiError } from '../core/errors.js';
import { iso } from '../core/time.js';
import { principalOf } from '../http/auth.js';
import { errorResponses } from '../http/schemas.js';
import type { Store } from '../store/db.js';
import { EvidenceSchema } from './schemas.js';

const tags = ['sessions'];
const security = [{ apiKey: [] }];
const SessionParams = Type.Object({ id: Type.String({ maxLength: 64 }) }, { additionalProperties: false });

/** `GET /sessions/:id/browser` and its screenshot: what a browser login ran and, when it failed, left behind. */
export function evidenceRoutes(deps: { store: Pick<Store, 'db'> }): FastifyPluginAsyncTypebox {
  const { db } = deps.store;
  /** The run of a session of the caller's organization (and of an account the key may reach). */
  const runOf = async (principal: ReturnType<typeof principalOf>, sessionId: string) => {
    const run = await db
      .selectFrom('browser_runs')
      .innerJoin('sessions', 'sessions.id', 'browser_runs.session_id')
      .selectAll('browser_runs')
      .select('sessions.stages')
      .where('browser_runs.session_id', '=', sessionId)
      .where('browser_runs.org_id', '=', principal.orgId)
      .executeTakeFirst();
    if (!run || (principal.accountIds !== null && !principal.accountIds.has(run.account_id))) {
      throw new ApiError('NOT_FOUND', 'no browser run for this session');
    }
    return run;
  };
  return async (app) => {
    app.get(
      '/sessions/:id/browser',
      {
        config: { scopes: ['status:read'] },
        schema: {
          tags,
          security,
          summary: 'The bank script version a browser login ran, and its failure evidence',
          description:
            'Only for sessions of browser-script banks. Evidence (screenshot, masked HTML, URL, console errors) is kept for `OTPILOT_BROWSER_EVIDENCE_DAYS`; no password, code or cookie is in it.',
          params: SessionParams,
          response: { 200: EvidenceSchema, ...errorResponses(403, 404) },
        },
      },
      async (request) => {
        const run = await runOf(principalOf(request), request.params.id);
        return {
          session_id: run.session_id,
          bank_id: run.bank_id,
          script_version: run.script_version,
          failed_at: run.failed_at === null ? null : iso(run.failed_at),
          error: run.error,
          url: run.url,
          html: run.html,
          screenshot_url: run.screenshot ? `${request.url.split('?')[0]}/screenshot` : null,
          console_errors: run.console_errors ? (JSON.parse(run.console_errors) as string[]) : [],
          stages: run.stages ? (JSON.parse(run.stages) as { name: string; at: string }[]) : [],
        };
      },
    );

    app.get(
      '/sessions/:id/browser/screenshot',
      {
        config: { scopes: ['status:read'] },
        schema: {
          tags,
          security,
          summary: "The failed page's screenshot (PNG, inputs masked)",
          params: SessionParams,
          produces: ['image/png'],
          response: {
            200: {
              description: 'PNG image',
              content: {
                'image/png': {
                  schema: Type.Unsafe<Buffer>({ type: 'string', format: 'binary', examples: ['(PNG bytes)'] }),
                },
              },
            },
            ...errorResponses(403, 404),
          },
        },
      },
      async (request, reply) => {
        const run = await runOf(principalOf(request), request.params.id);
        if (!run.screenshot) throw new ApiError('NOT_FOUND', 'this session kept no screenshot');
        return reply
          .type('image/png')
          .header('cache-control', 'private, no-store')
          .send(Buffer.from(run.screenshot, 'base64'));
      },
    );
  };
}
