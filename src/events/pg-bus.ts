import { randomBytes } from 'node:crypto';
import { CompiledQuery } from 'kysely';
import pg from 'pg';
import type { Logger } from 'pino';
import type { EventEnvelope } from '../core/events.js';
import type { Db } from '../store/db.js';
import { discardClient } from '../store/pg-client.js';
import { type Bus, makeMemoryBus } from './bus.js';
import { selectEvents, toEnvelope } from './outbox.js';
import { topics as TOPICS } from './topics.js';

/** One NOTIFY payload: who sent it, the topics it wakes and the committed events it announces. */
interface Message {
  /** Origin: the sending process (it delivered the same wake-ups locally already). */
  o: string;
  t: string[];
  /** Event ids: NOTIFY payloads are capped at 8000 bytes, so receivers read the events themselves. */
  e: string[];
}

/** Stays under PostgreSQL's 8000-byte NOTIFY payload limit with room to spare. */
const MAX_PAYLOAD = 7000;
const RECONNECT_MIN_MS = 250;
const RECONNECT_MAX_MS = 5000;

export interface PostgresBus extends Bus {
  /** Connects the LISTEN connection (resolves once listening; reconnects by itself afterwards). */
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** The NOTIFY channel of a store: one per schema, so stores sharing a server never wake each other. */
export function channelFor(schema: string): string {
  return `otpilot_${schema}`.slice(0, 63);
}

/**
 * The bus across processes: every publish is delivered in this process at once (as the memory bus
 * does) and sent to the others with `NOTIFY` (batched per event-loop turn). A dedicated connection
 * `LISTEN`s and republishes what other processes sent. Events travel as ids and are read back from
 * the outbox. Nothing depends on a notification arriving: every waiter also polls.
 */
export function makePostgresBus(options: {
  db: Db;
  clientConfig: pg.ClientConfig;
  schema: string;
  log: Logger;
}): PostgresBus {
  const { db, log } = options;
  const local = makeMemoryBus();
  const origin = randomBytes(6).toString('hex');
  const channel = channelFor(options.schema);
  let topics = new Set<string>();
  let events: string[] = [];
  let flushing = false;
  let client: pg.Client | null = null;
  let connected = false;
  let stopped = false;
  let retryMs = RECONNECT_MIN_MS;
  let retryTimer: NodeJS.Timeout | null = null;

  /** Splits what is queued into payloads under the NOTIFY limit. */
  function payloads(): string[] {
    const out: string[] = [];
    let current: Message = { o: origin, t: [], e: [] };
    let size = 30;
    const push = (kind: 't' | 'e', value: string) => {
      if (size + value.length + 3 > MAX_PAYLOAD && (current.t.length > 0 || current.e.length > 0)) {
        out.push(JSON.stringify(current));
        current = { o: origin, t: [], e: [] };
        size = 30;
      }
      current[kind].push(value);
      size += value.length + 3;
    };
    for (const topic of topics) push('t', topic);
    for (const id of events) push('e', id);
    if (current.t.length > 0 || current.e.length > 0) out.push(JSON.stringify(current));
    topics = new Set();
    events = [];
    return out;
  }

  async function flush(): Promise<void> {
    flushing = false;
    for (const payload of payloads()) {
      try {
        // Over the LISTEN connection when it is up: a pool busy with a burst of work must not hold
        // wake-ups back, which is exactly when they matter.
        if (client && connected) await client.query('select pg_notify($1, $2)', [channel, payload]);
        else await db.executeQuery(CompiledQuery.raw('select pg_notify($1, $2)', [channel, payload]));
      } catch (error) {
        // The fallback polls cover a lost wake-up; the database being down is reported elsewhere.
        log.debug({ err: error }, 'sending a wake-up failed');
      }
    }
  }

  async function receive(message: Message): Promise<void> {
    // A bare `event` wake-up carries no envelope; subscribers that read one would fail on it.
    for (const topic of message.t) if (topic !== 'event') local.publish(topic);
    if (message.e.length === 0) return;
    const rows = await selectEvents(db).where('e.id', 'in', message.e).orderBy('e.seq').execute();
    for (const row of rows) {
      const envelope = toEnvelope(row);
      if (envelope) local.publish('event', envelope);
    }
  }

  function scheduleReconnect(): void {
    if (stopped || retryTimer) return;
    retryTimer = setTimeout(() => {
      retryTimer = null;
      void connect().catch(() => scheduleReconnect());
    }, retryMs);
    retryMs = Math.min(retryMs * 2, RECONNECT_MAX_MS);
  }

  async function connect(): Promise<void> {
    const next = new pg.Client(options.clientConfig);
    client = next;
    const lost = (error?: unknown) => {
      if (client !== next) return;
      if (connected) log.warn({ err: error }, 'the wake-up connection to PostgreSQL was lost; reconnecting');
      connected = false;
      client = null;
      void discardClient(next);
      scheduleReconnect();
    };
    next.on('error', lost);
    next.on('end', () => lost());
    next.on('notification', (notification) => {
      if (!notification.payload) return;
      let message: Message;
      try {
        message = JSON.parse(notification.payload) as Message;
      } catch {
        return;
      }
      if (message.o === origin) return;
      void receive(message).catch((error: unknown) => log.debug({ err: error }, 'reading announced events failed'));
    });
    try {
      await next.connect();
      await next.query(`listen "${channel}"`);
    } catch (error) {
      lost(error);
      throw error;
    }
    if (client !== next) return;
    const wasDown = !connected;
    connected = true;
    retryMs = RECONNECT_MIN_MS;
    // Whatever was announced while we were not listening: let the pollers look now, not at their next tick.
    if (wasDown) for (const topic of [TOPICS.work, TOPICS.deliveries, TOPICS.resync]) local.publish(topic);
  }

  return {
    publish(topic, payload) {
      local.publish(topic, payload);
      if (topic !== TOPICS.event) topics.add(topic);
      else {
        const id = (payload as EventEnvelope | undefined)?.id;
        // Other processes read the event itself from the outbox; a bare wake-up still reaches them.
        if (id) events.push(id);
        else topics.add(topic);
      }
      if (!flushing) {
        flushing = true;
        setImmediate(() => void flush());
      }
    },
    subscribe: local.subscribe,
    subscribeAll: local.subscribeAll,
    waiter: local.waiter,
    async start() {
      stopped = false;
      try {
        await connect();
      } catch (error) {
        // Start anyway: polls cover the gap and the connection is retried.
        log.warn({ err: error }, 'could not LISTEN for wake-ups yet; retrying');
      }
    },
    async stop() {
      stopped = true;
      if (retryTimer) clearTimeout(retryTimer);
      const current = client;
      client = null;
      connected = false;
      if (current) await discardClient(current);
    },
  };
}
