import type { Kysely } from 'kysely';
import { expect } from 'vitest';
import type { EventEnvelope, EventType } from '../../src/core/events.js';
import { selectEvents, toEnvelope } from '../../src/events/outbox.js';
import type { Database } from '../../src/store/schema.js';
import type { Api } from './api.js';
import type { TestServer } from './server.js';

/** Polls `read` until `done` holds, at most `timeoutMs`: for state that has no event to await. */
export async function eventually<T>(
  read: () => Promise<T>,
  done: (value: T) => boolean,
  timeoutMs = 10_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline)
      throw new Error(`condition not met within ${timeoutMs} ms; last value: ${JSON.stringify(value)}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/**
 * Waits for the account's status to satisfy `done`, using the status long-poll (`?wait=`), so the
 * test wakes up on the change itself rather than on a timer.
 */
export async function statusUntil(
  api: Api,
  accountId: string,
  done: (status: any) => boolean,
  timeoutMs = 15_000,
): Promise<any> {
  const deadline = Date.now() + timeoutMs;
  let reply = await api.get(`/v1/accounts/${accountId}/status`);
  while (!done(reply.body)) {
    if (Date.now() > deadline)
      throw new Error(`status not reached within ${timeoutMs} ms; last: ${JSON.stringify(reply.body)}`);
    // If-None-Match names the status already seen: the server answers on the next change after it.
    reply = await api.raw(`/v1/accounts/${accountId}/status?wait=5`, {
      headers: { authorization: `Api-Key ${api.key ?? ''}`, 'if-none-match': reply.headers.get('etag') ?? '' },
    });
    expect(reply.status).toBe(200);
  }
  return reply.body;
}

/** Waits until the account has a pending assistance request and returns it. */
export async function pendingRequest(api: Api, accountId: string): Promise<any> {
  const status = await statusUntil(
    api,
    accountId,
    (s) => s.pending_assistance !== null && !s.pending_assistance.code_in_flight,
  );
  return status.pending_assistance;
}

/** Waits until the session has ended and returns it. */
export async function sessionEnd(api: Api, sessionId: string, timeoutMs = 15_000): Promise<any> {
  const reply = await eventually(
    () => api.get(`/v1/sessions/${sessionId}`),
    (r) => ['succeeded', 'failed', 'cancelled'].includes(r.body.state),
    timeoutMs,
  );
  return reply.body;
}

/** The newest SMS code on a sandbox user's phone. */
export async function latestCode(api: Api, username: string): Promise<string> {
  const reply = await api.get(`/sandbox-bank/phone/${encodeURIComponent(username)}`, null);
  expect(reply.status).toBe(200);
  const code = reply.body.messages[0]?.code;
  if (typeof code !== 'string') throw new Error(`no SMS on ${username}'s phone`);
  return code;
}

let counter = 0;

/** Creates a sandbox account for `username` (made unique with `+n`, so each test has its own bank user). */
export async function createSandboxAccount(
  api: Api,
  username: string,
  config: Record<string, unknown> = {},
  password = 'secret',
): Promise<{ id: string; username: string }> {
  const unique = `${username}+${process.pid}x${++counter}`;
  const reply = await api.post('/v1/accounts', {
    bank_id: 'sandbox',
    name: `Test ${unique}`,
    credentials: { username: unique, password },
    config,
  });
  expect(reply.status, JSON.stringify(reply.body)).toBe(201);
  return { id: reply.body.id, username: unique };
}

/** Queues a scrape and returns the session id. */
export async function scrape(api: Api, accountId: string): Promise<string> {
  const reply = await api.post(`/v1/accounts/${accountId}/scrape`);
  expect(reply.status, JSON.stringify(reply.body)).toBe(202);
  return reply.body.session_id;
}

/** Every movement of an account as the data API lists it (all pages), by id. */
export async function listedMovements(api: Api, accountId: string): Promise<Map<string, unknown>> {
  const out = new Map<string, unknown>();
  let cursor: string | null = null;
  do {
    const reply: { status: number; body: any } = await api.get(
      `/v1/accounts/${accountId}/movements?limit=500${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
    );
    expect(reply.status).toBe(200);
    for (const movement of reply.body.data as { id: string }[]) out.set(movement.id, movement);
    cursor = reply.body.next_cursor;
  } while (cursor);
  return out;
}

/**
 * The common opening of the assisted-login tests: a sandbox account for `username`, a scrape, and the
 * pending request it opens.
 */
export async function startAssistedLogin(
  api: Api,
  username = 'otp',
  config: Record<string, unknown> = {},
): Promise<{ account: { id: string; username: string }; sessionId: string; request: any }> {
  const account = await createSandboxAccount(api, username, config);
  const sessionId = await scrape(api, account.id);
  const request = await pendingRequest(api, account.id);
  return { account, sessionId, request };
}

/** The audit entries of one action on one account, read straight from the store. */
export async function auditOf(db: Kysely<Database>, accountId: string, action: string) {
  return db
    .selectFrom('audit_log')
    .selectAll()
    .where('account_id', '=', accountId)
    .where('action', '=', action)
    .execute();
}

/**
 * Resolves with the first event of `type` for `accountId`: one already committed, or the next one
 * published on the server's bus (no polling).
 */
export async function nextEvent(server: TestServer, type: EventType, accountId: string): Promise<EventEnvelope> {
  return new Promise((resolve, reject) => {
    let done = false;
    const finish = (event: EventEnvelope) => {
      if (done) return;
      done = true;
      unsubscribe();
      clearTimeout(timer);
      resolve(event);
    };
    const unsubscribe = server.server.bus.subscribe('event', (payload) => {
      const event = payload as EventEnvelope;
      if (event.type === type && event.account_id === accountId) finish(event);
    });
    const timer = setTimeout(() => {
      unsubscribe();
      reject(new Error(`no ${type} event for ${accountId}`));
    }, 10_000);
    void selectEvents(server.server.store.db)
      .where('e.type', '=', type)
      .where('e.account_id', '=', accountId)
      .orderBy('e.seq')
      .executeTakeFirst()
      .then((row) => {
        const envelope = row ? toEnvelope(row) : null;
        if (envelope) finish(envelope);
      });
  });
}
