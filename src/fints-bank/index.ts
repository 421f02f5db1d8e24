import type { FastifyPluginAsync, FastifySchema } from 'fastify';
import { listenStandalone } from '../http/standalone.js';
import { handleMessage } from './dialog.js';
import { type FintsBankOptions, FintsBankState } from './state.js';
import { FINTS_BEHAVIOURS, FINTS_PIN } from './users.js';

export type { FintsBankOptions } from './state.js';

/** One local FinTS 3.0 PIN/TAN bank: its routes and its state (for tests). */
export interface FintsBank {
  /** Fastify plugin; the host registers it with `{ prefix: '/fints-bank' }`. FinTS endpoint: `POST …/fints`. */
  plugin: FastifyPluginAsync;
  state: FintsBankState;
}

/** The largest FinTS message the bank reads (base64), bytes. */
const BODY_LIMIT = 1_048_576;

/**
 * Options of every route (fresh per route): hidden from the host's OpenAPI document, skipped by its auth
 * hook and exempt from its rate limits, as the sandbox bank's.
 */
function route() {
  return { schema: { hide: true } as FastifySchema, config: { public: true as const, rateLimit: false as const } };
}

function routes(state: FintsBankState): FastifyPluginAsync {
  return async (app) => {
    // FinTS clients post base64 text under whatever content type they like (text/plain, octet-stream).
    app.removeAllContentTypeParsers();
    app.addContentTypeParser('*', { parseAs: 'string', bodyLimit: BODY_LIMIT }, (_req, body, done) => done(null, body));

    app.post('/fints', route(), async (request, reply) => {
      const body = typeof request.body === 'string' ? request.body.replace(/\s+/g, '') : '';
      const answer = handleMessage(state, Buffer.from(body, 'base64').toString('latin1'));
      if (answer.status === 503)
        return reply.code(503).type('text/plain').send('Service vorübergehend nicht verfügbar');
      return reply.type('text/plain').send(Buffer.from(answer.message, 'latin1').toString('base64'));
    });

    app.get('/', route(), async () => ({
      bank: 'otpilot FinTS test bank',
      blz: state.blz,
      endpoint: 'POST fints (base64 FinTS 3.0 messages)',
      pin: FINTS_PIN,
      users: FINTS_BEHAVIOURS,
    }));

    // The phone: smsTANs and approval requests, newest first.
    app.get<{ Params: { user: string } }>('/phone/:user', route(), async (request, reply) => {
      const user = state.user(request.params.user);
      if (!user) return reply.code(404).send({ error: 'unknown user' });
      return { user: user.id, messages: user.phone };
    });

    for (const action of ['approve', 'refuse'] as const) {
      app.post<{ Params: { user: string } }>(`/phone/:user/${action}`, route(), async (request, reply) => {
        const pending = state.pendingApproval(request.params.user);
        if (!pending) return reply.code(404).send({ error: 'no approval is waiting' });
        pending.state = action === 'approve' ? 'approved' : 'refused';
        return { order_ref: pending.orderRef, state: pending.state };
      });
    }
  };
}

export function makeFintsBank(options: FintsBankOptions = {}): FintsBank {
  const state = new FintsBankState(options);
  return { plugin: routes(state), state };
}

/** A running standalone FinTS bank. */
export interface FintsBankServer {
  /** Base URL, ending in `/fints-bank/`. */
  url: string;
  /** The FinTS endpoint (what a client's "server URL" is): `<url>fints`. */
  endpoint: string;
  state: FintsBankState;
  close(): Promise<void>;
}

/** Standalone server (`otpilot fints-bank --port N`, tests): a Fastify app with the bank at `/fints-bank`. */
export async function startFintsBankServer(opts: {
  port: number;
  host: string;
  bank?: FintsBankOptions;
}): Promise<FintsBankServer> {
  const bank = makeFintsBank(opts.bank);
  const { app, url } = await listenStandalone({
    plugin: bank.plugin,
    prefix: '/fints-bank',
    port: opts.port,
    host: opts.host,
  });
  return { url, endpoint: `${url}fints`, state: bank.state, close: () => app.close() };
}
