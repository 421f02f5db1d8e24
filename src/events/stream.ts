import type { Writable } from 'node:stream';
import type { EventEnvelope } from '../core/events.js';
import type { Db } from '../store/db.js';
import type { EventsTable } from '../store/schema.js';
import type { Bus } from './bus.js';
import { type EventHorizon, NO_HORIZON } from './horizon.js';
import { type StoredEvent, selectEvents, toEnvelope } from './outbox.js';
import { singleFlight } from './single-flight.js';
import { topics } from './topics.js';

/** How often an idle stream sends a comment, so proxies and clients do not drop it. */
export const KEEP_ALIVE_MS = 15_000;
/** The reconnection delay the stream asks clients to use. */
export const RETRY_MS = 3_000;
/** Rows read per query: a long backlog goes out in slices, never in one read. */
export const BATCH_SIZE = 500;

/** Response headers of an event stream (besides the app's own, like `x-request-id`). */
export const SSE_HEADERS = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-cache',
  connection: 'keep-alive',
  // nginx buffers responses by default, which would hold events back.
  'x-accel-buffering': 'no',
} as const;

/** Which events a stream may carry: one organization's, optionally narrowed to some of its accounts. */
export interface StreamAudience {
  orgId: string;
  /** null = every account, and organization-wide events too. */
  accountIds: ReadonlySet<string> | null;
}

export type EventRow = Omit<StoredEvent, 'seq'> & { seq: number };

/**
 * Whether `audience` may see an event. Events without an account concern the whole organization, so
 * only keys that see every account get them.
 */
export function canSeeEvent(audience: StreamAudience, event: Pick<EventsTable, 'org_id' | 'account_id'>): boolean {
  if (event.org_id !== audience.orgId) return false;
  if (audience.accountIds === null) return true;
  return event.account_id !== null && audience.accountIds.has(event.account_id);
}

// A field value must stay on its line: a line break would end the field early.
const oneLine = (value: string): string => value.replace(/[\r\n]+/g, ' ');

/** One SSE message; multi-line data becomes several `data:` lines, as the format requires. */
export function sseMessage(message: { id?: string; event?: string; data: string }): string {
  let out = '';
  if (message.id !== undefined) out += `id: ${oneLine(message.id)}\n`;
  if (message.event !== undefined) out += `event: ${oneLine(message.event)}\n`;
  for (const line of message.data.split(/\r\n|\r|\n/)) out += `data: ${line}\n`;
  return `${out}\n`;
}

/** The SSE message of an event: its id (for `Last-Event-ID`), its type as the event name, the envelope as data. */
export function sseEvent(envelope: EventEnvelope): string {
  return sseMessage({ id: envelope.id, event: envelope.type, data: JSON.stringify(envelope) });
}

/** A comment, which clients ignore (keep-alive). */
export function sseComment(text: string): string {
  return `${text
    .split(/\r\n|\r|\n/)
    .map((line) => `: ${line}\n`)
    .join('')}\n`;
}

/** The `retry:` field: how long a client waits before reconnecting. */
export function sseRetry(ms: number): string {
  return `retry: ${Math.max(0, Math.floor(ms))}\n\n`;
}

/**
 * The event id a client resumes after: the `Last-Event-ID` header wins over the `last_event_id`
 * query, because a browser's EventSource reconnects to the same URL (query included) with the header
 * naming the newest event it has seen. Empty values count as absent. `path` names the source, for errors.
 */
export function resumeFrom(
  header: string | string[] | undefined,
  query: string | undefined,
): { id: string; path: string } | null {
  const fromHeader = Array.isArray(header) ? header[0] : header;
  if (fromHeader !== undefined && fromHeader.trim() !== '')
    return { id: fromHeader.trim(), path: '/headers/last-event-id' };
  if (query !== undefined && query.trim() !== '') return { id: query.trim(), path: '/querystring/last_event_id' };
  return null;
}

/** The newest event's position in the organization's stream (0 when it has none): "from now on". */
export async function latestSeq(db: Db, orgId: string): Promise<number> {
  const row = await db
    .selectFrom('events')
    .select((eb) => eb.fn.max('seq').as('seq'))
    .where('org_id', '=', orgId)
    .executeTakeFirst();
  return Number(row?.seq ?? 0);
}

/**
 * The position of event `id`, or null when it is unknown or not visible to `audience` (a key cannot
 * resume from an event it could never have received, nor learn that such an event exists).
 */
export async function seqOfEvent(db: Db, audience: StreamAudience, id: string): Promise<number | null> {
  const row = await db
    .selectFrom('events')
    .select(['seq', 'org_id', 'account_id'])
    .where('id', '=', id)
    .where('org_id', '=', audience.orgId)
    .executeTakeFirst();
  return row && canSeeEvent(audience, row) ? Number(row.seq) : null;
}

/** The organization's events after position `afterSeq` up to `upTo`, in delivery order, at most `limit`. */
async function readEventsAfter(
  db: Db,
  orgId: string,
  afterSeq: number,
  upTo: number,
  limit: number,
): Promise<EventRow[]> {
  const rows = await selectEvents(db)
    .where('e.org_id', '=', orgId)
    .where('e.seq', '>', afterSeq)
    .where('e.seq', '<=', upTo)
    .orderBy('e.seq', 'asc')
    .limit(limit)
    .execute();
  return rows.map((row) => ({ ...row, seq: Number(row.seq) }));
}

export interface EventStreamOptions {
  db: Db;
  bus: Bus;
  /** Events past this are not read yet (an earlier one may still commit); default: no limit. */
  horizon?: EventHorizon;
  /** Where the SSE text goes (the HTTP response). Not ended here: the caller owns it. */
  sink: Writable;
  audience: StreamAudience;
  /** Send the events after this position (from `latestSeq` or `seqOfEvent`). */
  afterSeq: number;
  /** Fallback re-read interval, for wake-ups that never come. */
  pollMs: number;
  /** Stops the stream (client gone, server shutting down). */
  signal: AbortSignal;
  keepAliveMs?: number;
  batchSize?: number;
  /** A read failed; the stream stops (the client reconnects with its `Last-Event-ID`). */
  onError?: (error: unknown) => void;
}

/**
 * Writes the audience's events after `afterSeq` to `sink`, then every new one as it is committed,
 * until `signal` aborts, the sink closes or a read fails; resolves then (never rejects), with every
 * timer and listener removed.
 *
 * Content always comes from the `events` table, read by `seq` from the last row seen: a bus wake-up
 * only says "read again", so a lost or coalesced wake-up costs latency (up to `pollMs`), never an
 * event. One read runs at a time per stream; wake-ups during a read make it read once more.
 */
export function streamEvents(options: EventStreamOptions): Promise<void> {
  const { db, bus, sink, audience, signal } = options;
  const horizon = options.horizon ?? NO_HORIZON;
  const batchSize = options.batchSize ?? BATCH_SIZE;
  const keepAliveMs = options.keepAliveMs ?? KEEP_ALIVE_MS;

  return new Promise<void>((resolve) => {
    let cursor = options.afterSeq;
    let stopped = false;
    let releaseDrain: (() => void) | null = null;

    const stop = () => {
      if (stopped) return;
      stopped = true;
      clearInterval(poll);
      clearInterval(keepAlive);
      unsubscribe();
      signal.removeEventListener('abort', stop);
      sink.off('close', stop);
      sink.off('error', stop);
      releaseDrain?.();
      resolve();
    };

    // Resolves once the sink has room again, or at once when the stream stops meanwhile.
    const drained = () =>
      new Promise<void>((done) => {
        const release = () => {
          sink.off('drain', release);
          releaseDrain = null;
          done();
        };
        releaseDrain = release;
        sink.on('drain', release);
      });

    // One read at a time; a wake-up during a read causes one more.
    const read = singleFlight(async () => {
      if (stopped) return;
      try {
        for (;;) {
          const rows = await readEventsAfter(db, audience.orgId, cursor, await horizon.limit(), batchSize);
          if (stopped) return;
          let chunk = '';
          for (const row of rows) {
            // The cursor passes invisible rows too, so they are not read again.
            cursor = row.seq;
            if (!canSeeEvent(audience, row)) continue;
            // null: its movement was deleted with its account, so the event is gone too.
            const envelope = toEnvelope(row);
            if (envelope) chunk += sseEvent(envelope);
          }
          if (chunk !== '' && !sink.write(chunk)) await drained();
          if (stopped || rows.length < batchSize) break;
        }
      } catch (error) {
        options.onError?.(error);
        stop();
      }
    });
    const wake = () => {
      if (!stopped) void read();
    };

    const unsubscribe = bus.subscribe(topics.event, wake);
    const poll = setInterval(wake, options.pollMs);
    const keepAlive = setInterval(() => {
      // A stream that cannot keep up is not idle: no comment on top of the backlog.
      if (!stopped && !sink.writableNeedDrain) sink.write(sseComment('keep-alive'));
    }, keepAliveMs);
    poll.unref();
    keepAlive.unref();
    signal.addEventListener('abort', stop, { once: true });
    sink.on('close', stop);
    // A write to a connection that just broke; `close` follows, and the client resumes from its last id.
    sink.on('error', stop);

    if (signal.aborted || sink.destroyed || sink.writableEnded) stop();
    // The catch-up read: everything after `afterSeq` committed before the subscription above.
    else wake();
  });
}
