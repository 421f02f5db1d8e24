import { getEventListeners } from 'node:events';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EVENT_STATUS, type EventEnvelope } from '../src/core/events.js';
import type { Bus } from '../src/events/bus.js';
import { selectEvents, toEnvelope } from '../src/events/outbox.js';
import {
  canSeeEvent,
  latestSeq,
  resumeFrom,
  sseComment,
  sseEvent,
  sseMessage,
  sseRetry,
  streamEvents,
} from '../src/events/stream.js';
import { makeKeysService } from '../src/keys/service.js';
import { movementView } from '../src/movements/view.js';
import { createSandboxAccount, latestCode, listedMovements, scrape, sessionEnd } from './helpers/flows.js';
import { startTestServer, type TestServer } from './helpers/server.js';

let t: TestServer;

beforeAll(async () => {
  t = await startTestServer();
});
afterAll(async () => {
  await t?.close();
});

const WAIT_MS = 15_000;

/** One SSE message block: its fields, and the comments it carried. */
interface Frame {
  id?: string;
  event?: string;
  data?: string;
  retry?: number;
  comments: string[];
}

/**
 * A small SSE parser over a byte stream: frames (blank-line separated blocks) are queued as they
 * arrive, and `next` awaits one with a bounded timeout.
 */
function frameReader(body: ReadableStream<Uint8Array> | AsyncIterable<Uint8Array | string>) {
  const frames: Frame[] = [];
  let taken = 0;
  let ended = false;
  let notify: (() => void) | null = null;
  const wakeUp = () => {
    notify?.();
    notify = null;
  };

  void (async () => {
    const decoder = new TextDecoder();
    let buffer = '';
    let frame: Frame = { comments: [] };
    let fields = 0;
    try {
      for await (const chunk of body as AsyncIterable<Uint8Array | string>) {
        buffer += typeof chunk === 'string' ? chunk : decoder.decode(chunk, { stream: true });
        let newline = buffer.search(/\r\n|\r|\n/);
        while (newline !== -1) {
          const line = buffer.slice(0, newline);
          buffer = buffer.slice(buffer[newline] === '\r' && buffer[newline + 1] === '\n' ? newline + 2 : newline + 1);
          if (line === '') {
            if (fields > 0) frames.push(frame);
            frame = { comments: [] };
            fields = 0;
            wakeUp();
          } else if (line.startsWith(':')) {
            frame.comments.push(line.slice(1).trimStart());
            fields++;
          } else {
            const colon = line.indexOf(':');
            const name = colon === -1 ? line : line.slice(0, colon);
            const value = colon === -1 ? '' : line.slice(colon + 1).replace(/^ /, '');
            if (name === 'data') frame.data = frame.data === undefined ? value : `${frame.data}\n${value}`;
            else if (name === 'id') frame.id = value;
            else if (name === 'event') frame.event = value;
            else if (name === 'retry') frame.retry = Number(value);
            fields++;
          }
          newline = buffer.search(/\r\n|\r|\n/);
        }
      }
    } catch {
      // Aborted by close(): the end of the stream, as far as the test is concerned.
    }
    ended = true;
    wakeUp();
  })();

  async function next(timeoutMs = WAIT_MS): Promise<Frame> {
    const deadline = Date.now() + timeoutMs;
    while (taken >= frames.length) {
      if (ended) throw new Error('the stream ended');
      const remaining = deadline - Date.now();
      if (remaining <= 0) throw new Error(`no SSE frame within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, remaining);
        notify = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    return frames[taken++]!;
  }

  /** Resolves once the stream has ended (bounded). */
  async function end(timeoutMs = WAIT_MS): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!ended) {
      const remaining = deadline - Date.now();
      if (remaining <= 0) throw new Error(`the stream did not end within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, remaining);
        notify = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  return { next, end, frames };
}

interface Received {
  frame: Frame;
  envelope: EventEnvelope;
}

/** Opens `GET /v1/events` with real HTTP; `close()` aborts the request. */
async function openStream(
  options: { key?: string; headers?: Record<string, string>; query?: string; url?: string } = {},
) {
  const controller = new AbortController();
  const response = await fetch(`${options.url ?? t.url}/v1/events${options.query ?? ''}`, {
    headers: { authorization: `Api-Key ${options.key ?? t.key}`, ...options.headers },
    signal: controller.signal,
  });
  if (response.status !== 200) {
    controller.abort();
    throw new Error(`stream refused: ${response.status} ${await response.text().catch(() => '')}`);
  }
  const reader = frameReader(response.body!);
  /** Every event received so far, in order. */
  const events: Received[] = [];

  /** The next frame that carries an event (keep-alives skipped). */
  async function nextEvent(timeoutMs = WAIT_MS): Promise<Received> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const frame = await reader.next(Math.max(1, deadline - Date.now()));
      if (frame.data === undefined) continue;
      const received = { frame, envelope: JSON.parse(frame.data) as EventEnvelope };
      events.push(received);
      return received;
    }
  }

  return {
    response,
    events,
    next: reader.next,
    end: reader.end,
    nextEvent,
    /** Events up to and including the first that satisfies `done`. */
    async until(done: (event: EventEnvelope) => boolean, timeoutMs = WAIT_MS): Promise<EventEnvelope[]> {
      const deadline = Date.now() + timeoutMs;
      const out: EventEnvelope[] = [];
      for (;;) {
        const { envelope } = await nextEvent(Math.max(1, deadline - Date.now()));
        out.push(envelope);
        if (done(envelope)) return out;
      }
    },
    /** Exactly the next `count` events. */
    async take(count: number, timeoutMs = WAIT_MS): Promise<EventEnvelope[]> {
      const deadline = Date.now() + timeoutMs;
      const out: EventEnvelope[] = [];
      while (out.length < count) out.push((await nextEvent(Math.max(1, deadline - Date.now()))).envelope);
      return out;
    },
    close: () => controller.abort(),
  };
}

type Stream = Awaited<ReturnType<typeof openStream>>;

/** Opens a stream for the test and always closes it, so the server's close() has nothing to wait for. */
async function withStream<T>(
  options: Parameters<typeof openStream>[0],
  use: (stream: Stream) => Promise<T>,
): Promise<T> {
  const stream = await openStream(options);
  try {
    return await use(stream);
  } finally {
    stream.close();
  }
}

async function storedEvents(afterSeq: number, accountId?: string) {
  let q = selectEvents(t.server.store.db)
    .where('e.org_id', '=', t.orgId)
    .where('e.seq', '>', afterSeq)
    .orderBy('e.seq', 'asc');
  if (accountId) q = q.where('e.account_id', '=', accountId);
  return q.execute();
}

async function seqOf(eventId: string): Promise<number> {
  const row = await t.server.store.db
    .selectFrom('events')
    .select('seq')
    .where('id', '=', eventId)
    .executeTakeFirstOrThrow();
  return Number(row.seq);
}

async function restrictedKey(scopes: string, accountIds: string[] | null): Promise<string> {
  const created = await makeKeysService({ db: t.server.store.db, clock: Date.now }).create({
    orgId: t.orgId,
    name: `events test ${scopes}`,
    scopes,
    accountIds,
    createdBy: null,
  });
  if (!created.ok) throw new Error(created.message);
  return created.value.key;
}

describe('GET /v1/events', () => {
  it('streams an OTP login: assistance_required, then assistance_fulfilled and scrape_succeeded', async () => {
    const { api } = t;
    const account = await createSandboxAccount(api, 'otp');
    await withStream({}, async (stream) => {
      const headers = stream.response.headers;
      expect(headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
      expect(headers.get('cache-control')).toBe('no-cache');
      expect(headers.get('x-accel-buffering')).toBe('no');
      expect(headers.get('x-request-id')).toMatch(/^req_/);
      expect(await stream.next()).toEqual({ retry: 3000, comments: [] });

      const openedAt = await latestSeq(t.server.store.db, t.orgId);
      const sessionId = await scrape(api, account.id);
      const mine = (e: EventEnvelope) => e.account_id === account.id;
      const upToRequest = (await stream.until((e) => mine(e) && e.type === 'assistance_required')).filter(mine);
      expect(upToRequest).toHaveLength(1);
      const required = upToRequest[0]!;
      expect(required).toMatchObject({
        type: 'assistance_required',
        status: 'assistance.requested',
        account_id: account.id,
        data: { state: 'pending', session_id: sessionId, descriptor: { length: 6, type: 'numeric' } },
      });
      const requestId = (required.data as { id: string }).id;
      expect(requestId).toMatch(/^asr_/);

      const code = await latestCode(api, account.username);
      const submitted = await api.post(`/v1/accounts/${account.id}/otp?wait=true`, { code, request_id: requestId });
      expect(submitted.body.outcome).toBe('accepted');
      const rest = (await stream.until((e) => mine(e) && e.type === 'scrape_succeeded')).filter(mine);
      expect(rest.map((e) => e.type).filter((type) => type !== 'bank_movement')).toEqual([
        'assistance_fulfilled',
        'scrape_succeeded',
      ]);
      expect(rest[0]).toMatchObject({ status: 'assistance.fulfilled', data: { id: requestId, reason: 'accepted' } });
      expect(rest.at(-1)).toMatchObject({ status: 'scrape.succeeded', data: { session_id: sessionId } });
      expect((await sessionEnd(api, sessionId)).state).toBe('succeeded');

      // Exactly what the outbox holds, in its order, each with its id and type on the SSE fields.
      const stored = (await storedEvents(openedAt, account.id)).map(toEnvelope);
      expect([...upToRequest, ...rest]).toEqual(stored);
      for (const { frame, envelope } of stream.events) {
        expect(frame.id).toBe(envelope.id);
        expect(frame.event).toBe(envelope.type);
        expect(envelope.status).toBe(EVENT_STATUS[envelope.type]);
      }
    });
  });

  it('resumes after Last-Event-ID with exactly the missed events, then continues live', async () => {
    const { api } = t;
    const first = await createSandboxAccount(api, 'alice');
    const second = await createSandboxAccount(api, 'alice');

    const before = await withStream({}, async (stream) => {
      const firstSession = await scrape(api, first.id);
      await stream.until((e) => e.type === 'scrape_succeeded' && (e.data as any).session_id === firstSession);
      return stream.events.map((e) => e.envelope);
    });
    const lastSeen = before.at(-1)!.id;

    // While disconnected: a whole scrape (a movement event for each new movement, then scrape_succeeded).
    const missedSession = await scrape(api, second.id);
    expect((await sessionEnd(api, missedSession)).state).toBe('succeeded');
    const missed = (await storedEvents(await seqOf(lastSeen))).map(toEnvelope);
    expect(missed.length).toBeGreaterThan(10);
    expect(missed.at(-1)).toMatchObject({ type: 'scrape_succeeded', account_id: second.id });

    const after = await withStream({ headers: { 'last-event-id': lastSeen } }, async (stream) => {
      expect(await stream.next()).toEqual({ retry: 3000, comments: [] });
      expect(await stream.take(missed.length)).toEqual(missed);
      // Then live: a re-sent movement event arrives after the replay.
      const movement = (await api.get(`/v1/accounts/${second.id}/movements?limit=1`)).body.data[0];
      const notified = await api.post(`/v1/accounts/${second.id}/movements/${movement.id}/notify`);
      expect(notified.status).toBe(202);
      await stream.until((e) => e.type === 'bank_movement' && (e.data as any).id === movement.id);
      return stream.events.map((e) => e.envelope);
    });
    const ids = [...before, ...after].map((e) => e.id);
    expect(new Set(ids).size).toBe(ids.length);
    // The whole sequence (before + replay + live) is the outbox in order: nothing skipped at the seams.
    const stored = await storedEvents((await seqOf(before[0]!.id)) - 1);
    expect(ids).toEqual(stored.slice(0, ids.length).map((row) => row.id));

    // The query form, for clients that cannot set headers: the same replay.
    await withStream({ query: `?last_event_id=${lastSeen}` }, async (stream) => {
      expect(await stream.take(missed.length)).toEqual(missed);
    });
    // The header wins over the query (EventSource reconnects to the same URL with the header).
    const lastMissed = missed.at(-1)!.id;
    await withStream(
      { query: `?last_event_id=${lastSeen}`, headers: { 'last-event-id': lastMissed } },
      async (stream) => {
        const next = await stream.nextEvent();
        expect(await seqOf(next.envelope.id)).toBeGreaterThan(await seqOf(lastMissed));
      },
    );
  });

  it('carries bank_movement events as the data API shows the movement, old-shape ones too, and skips those of a deleted account', async () => {
    const { api } = t;
    const account = await createSandboxAccount(api, 'alice');
    const gone = await createSandboxAccount(api, 'alice');
    // An event as stored before migration 0018: the movement's view copied into `data`.
    const emitOldShape = async (accountId: string) => {
      const row = await t.server.store.db
        .selectFrom('movements')
        .selectAll()
        .where('account_id', '=', accountId)
        .orderBy('id')
        .executeTakeFirstOrThrow();
      await t.server.transact(async (_trx, uow) =>
        uow.emit({ orgId: t.orgId, accountId, type: 'bank_movement', data: movementView(row) }),
      );
      return row.id;
    };

    const lastSeen = await withStream({}, async (stream) => {
      expect(await stream.next()).toEqual({ retry: 3000, comments: [] });
      const sessionId = await scrape(api, account.id);
      const events = await stream.until((e) => e.type === 'scrape_succeeded' && e.account_id === account.id);
      const movements = await listedMovements(api, account.id);
      const carried = events.filter((e) => e.type === 'bank_movement' && e.account_id === account.id);
      expect(carried).toHaveLength((await sessionEnd(api, sessionId)).movements_new);
      expect(new Map(carried.map((e) => [(e.data as { id: string }).id, e.data]))).toEqual(movements);

      const copied = await emitOldShape(account.id);
      const [old] = (await stream.until((e) => e.type === 'bank_movement')).slice(-1);
      expect(old!.data).toEqual(movements.get(copied));
      return old!.id;
    });

    // Missed while disconnected: a scrape of an account deleted afterwards, then one more event.
    const goneSession = await scrape(api, gone.id);
    expect((await sessionEnd(api, goneSession)).state).toBe('succeeded');
    const { name } = (await api.get(`/v1/accounts/${gone.id}`)).body;
    expect((await api.delete(`/v1/accounts/${gone.id}`, { confirmation_name: name })).status).toBe(204);
    const marker = await emitOldShape(account.id);
    await withStream({ headers: { 'last-event-id': lastSeen } }, async (stream) => {
      expect(await stream.next()).toEqual({ retry: 3000, comments: [] });
      const replayed = await stream.until((e) => e.type === 'bank_movement' && e.account_id === account.id);
      expect((replayed.at(-1)!.data as { id: string }).id).toBe(marker);
      const ofGone = replayed.filter((e) => e.account_id === gone.id);
      // Its movements went with it, and so did their events; its other events are still there.
      expect(ofGone.some((e) => e.type === 'scrape_succeeded')).toBe(true);
      expect(ofGone.filter((e) => e.type === 'bank_movement')).toEqual([]);
    });
  });

  it("never sends a restricted key another account's events, nor organization-wide ones", async () => {
    const { api } = t;
    const a = await createSandboxAccount(api, 'alice');
    const b = await createSandboxAccount(api, 'alice');
    const key = await restrictedKey('status:read', [a.id]);

    await withStream({ key }, async (restricted) => {
      await withStream({}, async (everything) => {
        // An organization-wide event (no account), straight through the outbox.
        await t.server.transact(async (_trx, uow) => {
          uow.emit({ orgId: t.orgId, accountId: null, type: 'results_ready', data: { id: 'res_orgwide' } });
        });
        const orgWide = (await everything.until((e) => e.account_id === null)).at(-1)!;
        expect(orgWide).toMatchObject({ type: 'results_ready', status: 'results.ready', data: { id: 'res_orgwide' } });

        const bSession = await scrape(api, b.id);
        await everything.until((e) => e.type === 'scrape_succeeded' && e.account_id === b.id);
        expect((await sessionEnd(api, bSession)).state).toBe('succeeded');
        const aSession = await scrape(api, a.id);
        // A's scrape comes after everything above in delivery order: once it arrives, the rest was passed over.
        const seen = await restricted.until((e) => e.type === 'scrape_succeeded' && e.account_id === a.id);
        expect(seen.every((e) => e.account_id === a.id)).toBe(true);
        expect(seen.length).toBe((await storedEvents(0, a.id)).length);
        expect((await sessionEnd(api, aSession)).state).toBe('succeeded');
        expect(everything.events.some((e) => e.envelope.account_id === b.id)).toBe(true);

        // Nor can it resume from an event it could never have received.
        const foreign = everything.events.find((e) => e.envelope.account_id === b.id)!.envelope.id;
        const refused = await api.raw('/v1/events', {
          headers: { authorization: `Api-Key ${key}`, 'last-event-id': foreign },
        });
        expect(refused.status).toBe(400);
        expect(refused.body.error.code).toBe('VALIDATION_FAILED');
      });
    });
  });

  it('refuses an unknown Last-Event-ID, missing credentials and a key without status:read', async () => {
    const { api } = t;
    const auth = { authorization: `Api-Key ${t.key}` };
    const unknownHeader = await api.raw('/v1/events', {
      headers: { ...auth, 'last-event-id': 'evt_00000000000000000000000000' },
    });
    expect(unknownHeader.status).toBe(400);
    expect(unknownHeader.headers.get('content-type')).toContain('application/json');
    expect(unknownHeader.body).toEqual({
      error: {
        code: 'VALIDATION_FAILED',
        message: 'unknown Last-Event-ID',
        details: [{ path: '/headers/last-event-id', message: 'is not an event of this stream' }],
      },
    });
    const unknownQuery = await api.raw('/v1/events?last_event_id=evt_nope', { headers: auth });
    expect(unknownQuery.status).toBe(400);
    expect(unknownQuery.body.error.details[0].path).toBe('/querystring/last_event_id');

    const badQuery = await api.raw('/v1/events?since=yesterday', { headers: auth });
    expect(badQuery.status).toBe(400);
    expect(badQuery.body.error.code).toBe('VALIDATION_FAILED');
    expect((await api.raw('/v1/events?follow=1', { headers: auth })).status).toBe(400);

    const anonymous = await api.raw('/v1/events', {});
    expect(anonymous.status).toBe(401);
    expect(anonymous.body.error.code).toBe('UNAUTHORIZED');

    const noScope = await restrictedKey('data:read', null);
    const forbidden = await api.raw('/v1/events', { headers: { authorization: `Api-Key ${noScope}` } });
    expect(forbidden.status).toBe(403);
    expect(forbidden.body.error.code).toBe('FORBIDDEN');
  });

  it('is documented in the OpenAPI document as text/event-stream', async () => {
    const spec = (await t.api.get('/openapi.json', null)).body;
    const operation = spec.paths['/v1/events'].get;
    expect(operation.tags).toEqual(['events']);
    expect(operation.security).toEqual([{ apiKey: [] }]);
    expect(Object.keys(operation.responses['200'].content)).toEqual(['text/event-stream']);
    expect(operation.parameters.map((p: any) => p.name).sort()).toEqual(['last_event_id', 'since']);
  });

  it('ends open streams when the server shuts down', async () => {
    const other = await startTestServer();
    let closed = false;
    try {
      const stream = await openStream({ url: other.url, key: other.key });
      expect(await stream.next()).toEqual({ retry: 3000, comments: [] });
      const closing = other.close().then(() => {
        closed = true;
      });
      await stream.end(5_000);
      await closing;
    } finally {
      if (!closed) await other.close();
    }
  });
});

describe('streamEvents', () => {
  /** The real bus, counting live subscriptions. */
  function countingBus(bus: Bus) {
    let live = 0;
    const counted: Bus = {
      ...bus,
      subscribe(topic, listener) {
        live++;
        const off = bus.subscribe(topic, listener);
        let done = false;
        return () => {
          if (!done) live--;
          done = true;
          off();
        };
      },
    };
    return { bus: counted, live: () => live };
  }

  it('replays across batches in order, sends keep-alive comments, and removes every listener when stopped', async () => {
    const accountId = 'acc_streamtest0000000000000000';
    const db = t.server.store.db;
    const start = await latestSeq(db, t.orgId);
    await t.server.transact(async (_trx, uow) => {
      for (let i = 0; i < 7; i++)
        uow.emit({ orgId: t.orgId, accountId, type: 'results_ready', data: { id: `res_${i}` } });
    });
    const sink = new PassThrough();
    const reader = frameReader(sink);
    const controller = new AbortController();
    const counting = countingBus(t.server.bus);
    const sinkListeners = () => sink.listenerCount('close') + sink.listenerCount('error') + sink.listenerCount('drain');
    let listenersWhileOpen = 0;
    const done = streamEvents({
      db,
      bus: counting.bus,
      sink,
      audience: { orgId: t.orgId, accountIds: new Set([accountId]) },
      afterSeq: start,
      pollMs: 60_000,
      keepAliveMs: 20,
      batchSize: 3,
      signal: controller.signal,
    });
    try {
      const ids: string[] = [];
      while (ids.length < 7) {
        const frame = await reader.next();
        if (frame.data !== undefined) ids.push((JSON.parse(frame.data) as EventEnvelope).data as any);
      }
      expect(ids.map((d: any) => d.id)).toEqual(['res_0', 'res_1', 'res_2', 'res_3', 'res_4', 'res_5', 'res_6']);
      // The reader's own listeners plus the stream's `close` and `error`.
      listenersWhileOpen = sinkListeners();
      // Live: one more, woken by the bus (the poll is a minute away).
      await t.server.transact(async (_trx, uow) => {
        uow.emit({ orgId: t.orgId, accountId, type: 'results_ready', data: { id: 'res_live' } });
      });
      let frame = await reader.next();
      while (frame.data === undefined) frame = await reader.next();
      expect(JSON.parse(frame.data)).toMatchObject({ account_id: accountId, data: { id: 'res_live' } });
      // Nothing else is happening for this account: the keep-alive comment comes next.
      expect(await reader.next()).toEqual({ comments: ['keep-alive'] });
      expect(counting.live()).toBe(1);
    } finally {
      controller.abort();
    }
    await done;
    expect(counting.live()).toBe(0);
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
    expect(sinkListeners()).toBe(listenersWhileOpen - 2);
    // The caller owns the sink: the stream leaves it open.
    expect(sink.writableEnded).toBe(false);
    sink.end();
  });

  it('runs one read at a time however many wake-ups arrive', async () => {
    let inFlight = 0;
    let most = 0;
    let reads = 0;
    // Counts the stream's queries as they start and finish.
    const db = t.server.store.db.withPlugin({
      transformQuery(args) {
        inFlight++;
        reads++;
        most = Math.max(most, inFlight);
        return args.node;
      },
      async transformResult(args) {
        inFlight--;
        return args.result;
      },
    });
    const sink = new PassThrough();
    const reader = frameReader(sink);
    const controller = new AbortController();
    const accountId = 'acc_streamtest0000000000000001';
    const done = streamEvents({
      db,
      bus: t.server.bus,
      sink,
      audience: { orgId: t.orgId, accountIds: new Set([accountId]) },
      afterSeq: await latestSeq(t.server.store.db, t.orgId),
      pollMs: 60_000,
      signal: controller.signal,
    });
    try {
      for (let i = 0; i < 100; i++) t.server.bus.publish('event');
      await t.server.transact(async (_trx, uow) => {
        uow.emit({ orgId: t.orgId, accountId, type: 'results_ready', data: { id: 'res_once' } });
      });
      for (let i = 0; i < 100; i++) t.server.bus.publish('event');
      const frame = await reader.next();
      expect(JSON.parse(frame.data!)).toMatchObject({ data: { id: 'res_once' } });
      expect(most).toBe(1);
      // The catch-up read, one for the first burst, then at most one per later wake-up burst or commit.
      expect(reads).toBeLessThanOrEqual(5);
    } finally {
      controller.abort();
      sink.end();
    }
    await done;
  });

  it('stops when the sink closes', async () => {
    const sink = new PassThrough();
    const counting = countingBus(t.server.bus);
    const done = streamEvents({
      db: t.server.store.db,
      bus: counting.bus,
      sink,
      audience: { orgId: t.orgId, accountIds: null },
      afterSeq: await latestSeq(t.server.store.db, t.orgId),
      pollMs: 60_000,
      signal: new AbortController().signal,
    });
    sink.destroy();
    await done;
    expect(counting.live()).toBe(0);
  });
});

describe('SSE framing and filtering', () => {
  const envelope: EventEnvelope = {
    id: 'evt_1',
    type: 'scrape_succeeded',
    status: 'scrape.succeeded',
    account_id: 'acc_1',
    data: { session_id: 'ses_1', note: 'two\nlines' },
    occurred_at: '2026-01-01T00:00:00.000Z',
  };

  it('frames events, comments and retry', () => {
    expect(sseEvent(envelope)).toBe(`id: evt_1\nevent: scrape_succeeded\ndata: ${JSON.stringify(envelope)}\n\n`);
    expect(sseMessage({ data: 'a\nb\r\nc' })).toBe('data: a\ndata: b\ndata: c\n\n');
    expect(sseMessage({ id: 'x\ny', data: '' })).toBe('id: x y\ndata: \n\n');
    expect(sseComment('keep-alive')).toBe(': keep-alive\n\n');
    expect(sseRetry(3000)).toBe('retry: 3000\n\n');
  });

  it('shows organization-wide events to unrestricted keys only', () => {
    const all = { orgId: 'org_1', accountIds: null };
    const one = { orgId: 'org_1', accountIds: new Set(['acc_1']) };
    expect(canSeeEvent(all, { org_id: 'org_1', account_id: 'acc_2' })).toBe(true);
    expect(canSeeEvent(all, { org_id: 'org_1', account_id: null })).toBe(true);
    expect(canSeeEvent(all, { org_id: 'org_2', account_id: null })).toBe(false);
    expect(canSeeEvent(one, { org_id: 'org_1', account_id: 'acc_1' })).toBe(true);
    expect(canSeeEvent(one, { org_id: 'org_1', account_id: 'acc_2' })).toBe(false);
    expect(canSeeEvent(one, { org_id: 'org_1', account_id: null })).toBe(false);
    expect(canSeeEvent(one, { org_id: 'org_2', account_id: 'acc_1' })).toBe(false);
  });

  it('resumes from the header before the query', () => {
    expect(resumeFrom('evt_h', 'evt_q')).toEqual({ id: 'evt_h', path: '/headers/last-event-id' });
    expect(resumeFrom(undefined, 'evt_q')).toEqual({ id: 'evt_q', path: '/querystring/last_event_id' });
    expect(resumeFrom('  ', 'evt_q')).toEqual({ id: 'evt_q', path: '/querystring/last_event_id' });
    expect(resumeFrom(undefined, undefined)).toBeNull();
  });
});
