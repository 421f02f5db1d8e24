import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';

/** Process roles of `otpilot start --role`. */
export type Role = 'all' | 'api' | 'worker';

/** What `/health` and `/metrics` report about this process. */
export interface SystemInfo {
  role: Role;
  /** The last database probe succeeded. */
  databaseUp(): boolean;
  /** Prometheus text exposition of this process's metrics. */
  metrics(): Promise<{ contentType: string; text: string }>;
}

const HealthSchema = Type.Object({
  ok: Type.Boolean(),
  role: Type.Union([Type.Literal('all'), Type.Literal('api'), Type.Literal('worker')]),
  database: Type.Union([Type.Literal('up'), Type.Literal('down')]),
});

/**
 * `/health` and `/metrics`: the only routes a worker serves. An API process stays healthy while the
 * database is down (it answers 503 UNAVAILABLE per request; `/ready` says whether storage answers);
 * a worker without a database can do nothing, so its health is 503 then.
 */
export function systemRoutes(system: SystemInfo): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.get(
      '/health',
      {
        config: { public: true },
        schema: {
          tags: ['system'],
          summary: 'Liveness, role and database reachability',
          response: { 200: HealthSchema, 503: HealthSchema },
        },
      },
      async (_request, reply) => {
        const up = system.databaseUp();
        const ok = up || system.role !== 'worker';
        return reply.status(ok ? 200 : 503).send({ ok, role: system.role, database: up ? 'up' : 'down' });
      },
    );
    app.get('/metrics', { config: { public: true }, schema: { hide: true } }, async (_request, reply) => {
      const { contentType, text } = await system.metrics();
      return reply.type(contentType).send(text);
    });
  };
}
