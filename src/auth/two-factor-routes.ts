import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { unwrap } from '../http/errors.js';
import { errorResponses } from '../http/schemas.js';
import { EnrollmentSchema, TwoFactorStatusSchema } from './schemas.js';
import type { TwoFactor } from './two-factor.js';

const tags = ['dashboard'];
const Code = Type.String({ minLength: 1, maxLength: 32 });

/** What the second-factor routes need. */
export interface TwoFactorRoutesDeps {
  twoFactor: TwoFactor;
}

/** The signed-in user's own second factor: enroll (QR), confirm, disable. */
export function twoFactorRoutes(deps: TwoFactorRoutesDeps): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.get(
      '/me/2fa',
      {
        config: { signedIn: true },
        schema: {
          tags,
          summary: 'Two-factor sign-in state',
          response: { 200: TwoFactorStatusSchema, ...errorResponses(401) },
        },
      },
      async (request) => deps.twoFactor.status(request.user!.id),
    );

    app.post(
      '/me/2fa/setup',
      {
        config: { signedIn: true },
        schema: {
          tags,
          summary: 'Start enrolling an authenticator',
          description:
            'Needs the password. Returns a new secret, its otpauth:// URL and a QR code (SVG). Nothing changes at sign-in until it is confirmed.',
          body: Type.Object(
            { password: Type.String({ minLength: 1, maxLength: 1024 }) },
            { additionalProperties: false },
          ),
          response: {
            200: EnrollmentSchema,
            ...errorResponses(400, 401, 403, 409),
          },
        },
      },
      async (request) => unwrap(await deps.twoFactor.setup(request.user!.id, request.body.password)),
    );

    app.post(
      '/me/2fa/confirm',
      {
        config: { signedIn: true },
        schema: {
          tags,
          summary: 'Turn two-factor sign-in on with a first code',
          description: 'Answers the backup codes; they are shown this once and each works once.',
          body: Type.Object({ code: Code }, { additionalProperties: false }),
          response: {
            200: Type.Object({ backup_codes: Type.Array(Type.String()) }),
            ...errorResponses(400, 401, 403, 409),
          },
        },
      },
      async (request) => unwrap(await deps.twoFactor.confirm(request.user!.id, request.body.code)),
    );

    app.post(
      '/me/2fa/disable',
      {
        config: { signedIn: true },
        schema: {
          tags,
          summary: 'Turn two-factor sign-in off',
          body: Type.Object(
            { password: Type.String({ minLength: 1, maxLength: 1024 }), code: Code },
            { additionalProperties: false },
          ),
          response: { 204: Type.Null(), ...errorResponses(400, 401, 403, 409) },
        },
      },
      async (request, reply) => {
        unwrap(await deps.twoFactor.disable(request.user!.id, request.body.password, request.body.code));
        return reply.status(204).send(null);
      },
    );
  };
}
