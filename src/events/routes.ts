import type { OutgoingHttpHeaders } from 'node:http';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { AuthService } from '../auth/service.js';
import type { Config } from '../config.js';
import { ApiError } from '../core/errors.js';
import { presentedApiKey, principalOf } from '../http/auth.js';
import { errorResponses } from '../http/schemas.js';
import { requestSignal } from '../http/wait.js';
import type { KeysService } from '../keys/service.js';
import { wasPruned } from '../retention/prune.js';
import type { Store } from '../store/db.js';
import type { Bus } from './bus.js';
import type { EventHorizon } from './horizon.js';
import {
  latestSeq,
  RETRY_MS,
  resumeFrom,
  SSE_HEADERS,
  type StreamAudience,
  seqOfEvent,
  sseRetry,
  streamEvents,
} from './stream.js';

const tags = ['events'];
/** How often an open stream re-checks its key or session: five fallback polls, at least a second. */
const credentialCheckMs = (pollMs: number) => Math.max(1_000, pollMs * 5);
const security = [{ apiKey: [] }];

const STREAM_DESCRIPTION = [
  "A Server-Sent Events stream of the organization's events (for relays behind NAT that cannot take webhooks),",
  "narrowed to the key's accounts when the key has `account_ids` (organization-wide events go to unrestricted keys only).",
  '',
  'Each message: `id: evt_…`, `event: <type>`, `data: <envelope>` with the envelope',
  '`{ id, type, status, account_id, data, occurred_at }`, in delivery order. A `: keep-alive` comment',
  'comes every 15 s; the stream opens with `retry: 3000`.',
  '',
  'Resume: send `Last-Event-ID` (or `?last_event_id=` for clients that cannot set headers; the header wins)',
  'and the stream first replays every event after that one, then continues live, without gaps or',
  'duplicates. Without it the stream starts with events committed after it opened (`since=now`).',
].join('\n');

/** What the event stream needs. */
export interface EventStreamDeps {
  store: Pick<Store, 'db'>;
  bus: Bus;
  horizon: EventHorizon;
  config: Pick<Config, 'pollMs'>;
  /** Checks that the stream's credentials still hold. */
  auth: Pick<AuthService, 'authenticate'>;
  keys: Pick<KeysService, 'authenticate'>;
  /** Aborted at shutdown: open streams end. */
  shutdown: AbortSignal;
}

/** `GET /v1/events`: the organization's events as Server-Sent Events. */
export function eventStreamRoutes(deps: EventStreamDeps): FastifyPluginAsyncTypebox {
  const { db } = deps.store;
  return async (app) => {
    app.get(
      '/events',
      {
        config: { scopes: ['status:read'] },
        schema: {
          tags,
          security,
          summary: 'Stream events (Server-Sent Events)',
          description: STREAM_DESCRIPTION,
          querystring: Type.Object(
            {
              last_event_id: Type.Optional(
                Type.String({ maxLength: 64, description: 'Resume after this event (as the `Last-Event-ID` header)' }),
              ),
              since: Type.Optional(
                Type.Literal('now', {
                  description: 'Without a last event id: start with events from now on (default)',
                }),
              ),
            },
            { additionalProperties: false },
          ),
          response: {
            200: {
              description: 'An endless `text/event-stream`; reconnect with `Last-Event-ID` to resume',
              content: { 'text/event-stream': { schema: Type.String() } },
            },
            ...errorResponses(400, 401, 403, 410),
          },
        },
      },
      async (request, reply) => {
        // Before any await: a client that leaves while the start is looked up must still stop the stream.
        const connection = requestSignal(reply, deps.shutdown);
        // Credentials are checked again while the stream is open: a revoked key or a signed-out
        // session stops receiving events within a few seconds.
        const ended = new AbortController();
        connection.addEventListener('abort', () => ended.abort(), { once: true });
        const recheck = setInterval(() => {
          const session = request.sessionToken;
          const key = presentedApiKey(request);
          const still = session
            ? deps.auth.authenticate(session)
            : key
              ? deps.keys.authenticate(key)
              : Promise.resolve(null);
          void still.then(
            (who) => {
              if (!who) ended.abort();
            },
            () => ended.abort(),
          );
        }, credentialCheckMs(deps.config.pollMs));
        ended.signal.addEventListener('abort', () => clearInterval(recheck), { once: true });
        const signal = ended.signal;
        const principal = principalOf(request);
        const audience: StreamAudience = { orgId: principal.orgId, accountIds: principal.accountIds };
        const resume = resumeFrom(request.headers['last-event-id'], request.query.last_event_id);
        let afterSeq: number;
        if (resume) {
          const seq = await seqOfEvent(db, audience, resume.id);
          // Refused before the stream starts, so the client gets the error shape, not a silent full replay.
          if (seq === null) {
            // An event the retention job removed: the client missed events it can no longer get.
            if (await wasPruned(db, resume.id))
              throw new ApiError(
                'GONE',
                'Last-Event-ID names an event older than the retention window (OTPILOT_EVENTS_RETENTION_DAYS); events after it may be gone too: reload state from the API, then reconnect without Last-Event-ID',
                { details: [{ path: resume.path, message: 'was pruned' }] },
              );
            throw new ApiError('VALIDATION_FAILED', 'unknown Last-Event-ID', {
              details: [{ path: resume.path, message: 'is not an event of this stream' }],
            });
          }
          afterSeq = seq;
        } else {
          afterSeq = await latestSeq(db, principal.orgId);
        }

        reply.hijack();
        const raw = reply.raw;
        // The app's headers (x-request-id) go out too; Fastify's typing of them is looser than Node's.
        raw.writeHead(200, { ...(reply.getHeaders() as OutgoingHttpHeaders), ...SSE_HEADERS });
        raw.write(sseRetry(RETRY_MS));
        await streamEvents({
          db,
          bus: deps.bus,
          horizon: deps.horizon,
          sink: raw,
          audience,
          afterSeq,
          pollMs: deps.config.pollMs,
          signal,
          onError: (error) => request.log.warn({ err: error }, 'event stream stopped: read failed'),
        });
        // Shutdown or a failed read: end the response so the client reconnects (a departed client's is gone already).
        if (!raw.writableEnded && !raw.destroyed) raw.end();
      },
    );
  };
}
