import rateLimit from '@fastify/rate-limit';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyPluginAsyncTypebox, TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyPluginAsync, LogController } from 'fastify';
import { sql } from 'kysely';
import type { Logger } from 'pino';
import sjson from 'secure-json-parse';
import { Type } from 'typebox';
import { accountRoutes } from './accounts/routes.js';
import { AccountSchema, BankSchema, ConfigSchema, StatusSchema } from './accounts/schemas.js';
import { assistanceRoutes } from './assistance/routes.js';
import { AssistanceSchema } from './assistance/schemas.js';
import { auditRoutes } from './audit/routes.js';
import { installSessionAuth } from './auth/plugin.js';
import { authRoutes } from './auth/routes.js';
import { twoFactorRoutes } from './auth/two-factor-routes.js';
import { evidenceRoutes } from './browser/evidence-routes.js';
import { scriptRoutes } from './browser/script-routes.js';
import type { ScriptCatalog } from './browser/scripts.js';
import { ApiError } from './core/errors.js';
import { newId } from './core/ids.js';
import { dataRoutes } from './data/routes.js';
import { EnvelopeSchema } from './data/schemas.js';
import { eventStreamRoutes } from './events/routes.js';
import { installApiKeyAuth } from './http/auth.js';
import { brandRoutes, LOGO_SVG, LOGO_WITH_NAME_SVG } from './http/brand.js';
import type { ApiDeps } from './http/deps.js';
import { clientError, frameworkError, installErrorHandling } from './http/errors.js';
import { documentErrors } from './http/openapi.js';
import { API_DESCRIPTION, finishDocument, SECURITY_SCHEMES } from './http/openapi-doc.js';
import { ErrorSchema } from './http/schemas.js';
import { type SystemInfo, systemRoutes } from './http/system-routes.js';
import { installTextGuard } from './http/text-guard.js';
import { installValidators } from './http/validation.js';
import { installWebApp } from './http/web-app.js';
import { insightRoutes } from './insights/routes.js';
import { apiKeyRoutes } from './keys/routes.js';
import { movementRoutes } from './movements/routes.js';
import { MovementSchema } from './movements/schemas.js';
import { organizationRoutes } from './orgs/routes.js';
import { reauthRoutes } from './reauth/routes.js';
import { reconcileRoutes } from './reconcile/routes.js';
import { ExpectedPaymentSchema } from './reconcile/schemas.js';
import { appTokenRoutes } from './reconnect/app-tokens.js';
import type { ReconnectService } from './reconnect/service.js';
import { widgetAssetRoutes, widgetRoutes } from './reconnect/widget-routes.js';
import { relayRoutes, twilioRelayRoutes } from './relay/routes.js';
import { rateLimitStore } from './security/rate-limits.js';
import { sessionRoutes } from './sessions/routes.js';
import { SessionSchema } from './sessions/schemas.js';
import { userRoutes } from './users/routes.js';
import { webhookRoutes } from './webhooks/routes.js';
import { DeliverySchema, EndpointSchema } from './webhooks/schemas.js';

export interface AppOptions extends ApiDeps {
  log: Logger;
  reconnects: ReconnectService;
  /** Role, database state and metrics of this process (`/health`, `/metrics`). */
  system: SystemInfo;
  /** The sandbox bank's plugin, mounted at /sandbox-bank when the sandbox is on. */
  sandboxBank: FastifyPluginAsync | null;
  /** The local FinTS bank's plugin, mounted at /fints-bank with the sandbox bank (absent: not mounted). */
  fintsBank?: FastifyPluginAsync | null;
  /** Versioned bank scripts of browser-script connectors. */
  browserScripts: ScriptCatalog;
  version: string;
}

const SHARED_SCHEMAS = [
  ErrorSchema,
  AssistanceSchema,
  AccountSchema,
  StatusSchema,
  BankSchema,
  ConfigSchema,
  SessionSchema,
  MovementSchema,
  EndpointSchema,
  DeliverySchema,
  EnvelopeSchema,
  ExpectedPaymentSchema,
];

/** Route plugins mounted twice: under /v1 for API keys, and without the prefix for dashboard sessions. */
const SHARED_ROUTES: ((deps: AppOptions) => FastifyPluginAsyncTypebox)[] = [
  accountRoutes,
  sessionRoutes,
  assistanceRoutes,
  movementRoutes,
  eventStreamRoutes,
  webhookRoutes,
  dataRoutes,
  appTokenRoutes,
  relayRoutes,
  insightRoutes,
  reconcileRoutes,
  evidenceRoutes,
];

/** Routes in the OpenAPI document: the External API, the dashboard-only routes, and the public probes. */
const DOCUMENTED = /^\/(v1\/|widget\/v1\/|auth\/|me($|\/)|users$|audit$|health$|ready$|relay\/twilio\/)/;

/**
 * Routes that answer without the database (health, metrics, static pages and documents). While the
 * database is down every other route answers 503 at once, so a new route is covered by default.
 */
const WITHOUT_STORAGE =
  /^\/($|\?|(health|metrics|app|docs|openapi\.json|favicon\.(ico|svg)|widget\.js|widget-demo|sandbox-bank)(\/|\?|\.|$))/;

/** A worker's HTTP server: `/health` and `/metrics` only. Does not listen. */
export async function buildWorkerApp(options: { log: Logger; system: SystemInfo }): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: options.log as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    forceCloseConnections: true,
    frameworkErrors: frameworkError,
    clientErrorHandler: clientError,
  }).withTypeProvider<TypeBoxTypeProvider>();
  installErrorHandling(app);
  await app.register(systemRoutes(options.system));
  return app;
}

/** Builds the HTTP app: plugins, auth, routes and the one error handler. Does not listen. */
export async function buildApp(options: AppOptions): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: options.log as FastifyBaseLogger,
    // Our own onResponse hook logs requests (at debug; errors at error), so Fastify's are off.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: options.config.bodyLimit,
    trustProxy: options.config.trustProxy,
    genReqId: () => newId('req'),
    requestIdHeader: false,
    // Requests during shutdown get our own 503 UNAVAILABLE (below), in the documented shape.
    return503OnClosing: false,
    forceCloseConnections: 'idle',
    frameworkErrors: frameworkError,
    clientErrorHandler: clientError,
  }).withTypeProvider<TypeBoxTypeProvider>();

  installValidators(app);
  installErrorHandling(app);
  app.decorate('configuredOrigin', options.config.publicUrl);

  // JSON with prototype-poisoning protection; an empty body is "no body" (POST /scrape with a JSON header).
  // JSON only: any other body type is refused with 415 (Fastify would otherwise read text/plain as a string).
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, done) => {
    const text = typeof body === 'string' ? body : body.toString('utf8');
    if (text.trim() === '') return done(null, undefined);
    try {
      done(null, sjson.parse(text, undefined, { protoAction: 'error', constructorAction: 'error' }));
    } catch {
      done(new ApiError('VALIDATION_FAILED', 'the body is not valid JSON'), undefined);
    }
  });

  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id);
    if (options.shutdown.aborted) {
      reply.header('connection', 'close');
      throw new ApiError('UNAVAILABLE', 'the server is shutting down; retry on another instance or in a moment');
    }
    // While the database is known to be down, answer at once instead of after the connect timeout.
    if (!options.system.databaseUp() && !WITHOUT_STORAGE.test(request.url))
      throw new ApiError('UNAVAILABLE', 'storage is unreachable; retry in a moment');
  });
  installTextGuard(app);
  // One line per request at debug level; the hook is not installed at all otherwise (hot paths).
  // Errors are logged by the error handler whatever the level.
  if (options.log.isLevelEnabled('debug')) {
    app.addHook('onResponse', async (request, reply) => {
      request.log.debug(
        {
          method: request.method,
          url: request.routeOptions.url,
          status: reply.statusCode,
          ms: Math.round(reply.elapsedTime),
        },
        'request',
      );
    });
  }

  await app.register(rateLimit, {
    global: false,
    // Counted in the store: every process and both mounts of a route (/v1 and the dashboard's) share a count.
    store: rateLimitStore(options.rateLimits),
    errorResponseBuilder: (_request, context) =>
      new ApiError('RATE_LIMITED', `too many requests; retry in ${context.after}`, {
        retryAfter: Math.ceil(context.ttl / 1000),
      }),
  });

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'otpilot API reference', version: options.version, description: API_DESCRIPTION },
      components: { securitySchemes: SECURITY_SCHEMES as never },
    },
    refResolver: {
      buildLocalReference: (json, _base, _fragment, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`),
    },
    // The dashboard mounts the /v1 routes a second time without the prefix; document each route once.
    transform: ({ schema, url, route }) => ({
      schema: DOCUMENTED.test(url) ? documentErrors(schema, url, route) : { ...schema, hide: true },
      url,
    }),
    transformObject: (document) => finishDocument('openapiObject' in document ? document.openapiObject : {}),
  });
  for (const schema of SHARED_SCHEMAS) app.addSchema(schema);

  await app.register(
    async (v1) => {
      installApiKeyAuth(v1, options.keys);
      for (const routes of SHARED_ROUTES) await v1.register(routes(options));
      // External API only: reauthorisation is an integrator flow, the dashboard has its own prompts.
      await v1.register(reauthRoutes(options));
      // API-key only: the dashboard manages keys at /me/api-keys, and has no instance administration.
      await v1.register(apiKeyRoutes(options));
      await v1.register(organizationRoutes(options));
      await v1.register(scriptRoutes(options));
    },
    { prefix: '/v1' },
  );
  // Public, signed by Twilio itself; its own plugin, so its form parser stays with it.
  await app.register(twilioRelayRoutes(options));

  // The dashboard API: the same routes without /v1, behind user sessions and role checks.
  await app.register(async (dashboard) => {
    await installSessionAuth(dashboard, options.auth);
    await dashboard.register(authRoutes(options));
    await dashboard.register(twoFactorRoutes(options));
    await dashboard.register(userRoutes(options));
    await dashboard.register(auditRoutes(options));
    for (const routes of SHARED_ROUTES) await dashboard.register(routes(options));
  });

  await app.register(systemRoutes(options.system));
  app.get(
    '/ready',
    {
      config: { public: true },
      schema: {
        tags: ['system'],
        summary: 'Storage reachable',
        response: { 200: Type.Object({ ok: Type.Boolean() }), 503: Type.Ref('Error') },
      },
    },
    async () => {
      try {
        await sql`select 1`.execute(options.store.db);
      } catch {
        throw new ApiError('UNAVAILABLE', 'storage is unreachable');
      }
      return { ok: true };
    },
  );
  app.get('/openapi.json', { config: { public: true }, schema: { hide: true } }, async () => app.swagger());
  await app.register(swaggerUi, {
    routePrefix: '/docs',
    uiConfig: {
      docExpansion: 'list',
      deepLinking: true,
      defaultModelsExpandDepth: 0,
      displayRequestDuration: true,
      filter: true,
      persistAuthorization: true,
    },
    logo: { type: 'image/svg+xml', content: LOGO_WITH_NAME_SVG, href: '/docs', target: '_self' },
    theme: {
      title: 'otpilot API reference',
      favicon: [{ filename: 'favicon.svg', rel: 'icon', sizes: 'any', type: 'image/svg+xml', content: LOGO_SVG }],
      // The document's own URL bar says nothing to a reader of the reference.
      css: [{ filename: 'otpilot.css', content: '.swagger-ui .topbar .download-url-wrapper { display: none; }' }],
    },
  });
  await app.register(brandRoutes);

  await installWebApp(app);
  await app.register(widgetRoutes({ db: options.store.db, reconnects: options.reconnects }), { prefix: '/widget/v1' });
  await app.register(widgetAssetRoutes());
  if (options.sandboxBank) await app.register(options.sandboxBank, { prefix: '/sandbox-bank' });
  if (options.fintsBank) await app.register(options.fintsBank, { prefix: '/fints-bank' });
  return app;
}
