import { expect } from 'vitest';
import type { Connector, LoginContext } from '../../src/connectors/sdk.js';
import type { Api } from './api.js';
import { createSandboxAccount, eventually, latestCode, pendingRequest, scrape, sessionEnd } from './flows.js';
import type { TestServer } from './server.js';

/*
 * The optional features whose listeners skip their query while nothing of the feature exists
 * (src/events/presence.ts), each used for the first time after logins already ran: the listener has
 * looked and found nothing, and must still do the feature's work. `work` runs the logins (and the
 * sandbox bank); `api` is where the feature is used: the same server, or another process on the
 * same PostgreSQL store.
 */

export interface FirstUse {
  work: TestServer;
  api: Api;
}

/** A login that asks for a code and gets it, ending `succeeded`: the listeners see its events. */
export async function loginWithCode(work: TestServer): Promise<void> {
  const account = await createSandboxAccount(work.api, 'otp');
  const sessionId = await scrape(work.api, account.id);
  await answerCode({ work, api: work.api }, account);
  expect((await sessionEnd(work.api, sessionId)).state).toBe('succeeded');
}

/** Answers the pending code request of `account` through the ordinary API, in `use.api`. */
async function answerCode(use: FirstUse, account: { id: string; username: string }): Promise<void> {
  const request = await pendingRequest(use.api, account.id);
  const code = await latestCode(use.work.api, account.username);
  const submitted = await use.api.post(`/v1/accounts/${account.id}/otp?wait=true`, { code, request_id: request.id });
  expect(submitted.status, JSON.stringify(submitted.body)).toBe(200);
}

/**
 * Sandbox connectors whose logins for the gated usernames stop before their code prompt until the
 * test lets them go (an SMS can then arrive before its request opens).
 */
export function gatedConnectors() {
  const gates = new Map<string, () => void>();
  const waits = new Map<string, Promise<void>>();
  const gateOf = (username: string) => {
    let wait = waits.get(username);
    if (!wait) {
      wait = new Promise<void>((resolve) => gates.set(username, resolve));
      waits.set(username, wait);
    }
    return wait;
  };
  return {
    /** Gates the logins of `username` (call before its login starts). */
    gate: (username: string) => void gateOf(username),
    open: (username: string) => gates.get(username)?.(),
    connectors: (builtin: Connector[]) =>
      builtin.map((connector) => ({
        ...connector,
        login: (ctx: LoginContext) =>
          connector.login({
            ...ctx,
            requestCode: (async (...args: Parameters<typeof ctx.requestCode>) => {
              const username = (ctx.credentials as Record<string, string>).username ?? '';
              const wait = waits.get(username);
              if (wait) {
                // A server shutting down aborts the login; the gate must not outlive it.
                const aborted = new Promise<never>((_resolve, reject) =>
                  ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason), { once: true }),
                );
                aborted.catch(() => {});
                await Promise.race([wait, aborted]);
              }
              return ctx.requestCode(...args);
            }) as typeof ctx.requestCode,
          }),
      })),
  };
}

/**
 * An SMS relayed before its login asks is held; the request that opens afterwards takes it, though
 * the relay's listener found nothing held at the logins before. `work` must run `gated.connectors`.
 */
export async function heldSmsFirstUse(use: FirstUse, gated: ReturnType<typeof gatedConnectors>): Promise<void> {
  const { work, api } = use;
  await loginWithCode(work);
  const account = await createSandboxAccount(api, 'otp');
  const phone = (await work.api.get(`/sandbox-bank/phone/${encodeURIComponent(account.username)}`, null)).body.phone;
  expect((await api.put(`/v1/accounts/${account.id}/config`, { otp_phone: phone })).status).toBe(200);
  gated.gate(account.username);
  const sessionId = await scrape(api, account.id);
  const sms = (
    await eventually(
      () => work.api.get(`/sandbox-bank/phone/${encodeURIComponent(account.username)}`, null),
      (r) => r.body.messages.length > 0,
    )
  ).body.messages[0];
  const held = await api.post('/v1/relay/sms', { to: sms.to, from: sms.from, body: sms.body });
  expect(held.body).toEqual({ matched: false, request_id: null, submitted: false, reason: 'held' });
  gated.open(account.username);
  expect((await sessionEnd(work.api, sessionId)).state).toBe('succeeded');
  const [done] = (await work.api.get(`/v1/assistance-requests?account_id=${account.id}`)).body.data;
  expect(done.resolution).toEqual({ via: 'sms_relay', reason: 'accepted' });
}

/**
 * A connect session whose login succeeds while nobody asks the connect API: the reauth listener
 * completes it (`account_reauthorized`), though it found none waiting at the logins before.
 */
export async function connectSessionFirstUse(use: FirstUse): Promise<void> {
  const { work, api } = use;
  await loginWithCode(work);
  const account = await createSandboxAccount(api, 'otp');
  const token = (await api.post(`/v1/accounts/${account.id}/reauthorise`)).body.token;
  const opened = await api.post('/v1/connect/session', { reauth_token: token });
  expect(opened.body.reauth, JSON.stringify(opened.body)).toMatchObject({ response_code: 102 });
  // The code goes through the ordinary API, so only the listener can see the login through.
  await answerCode(use, account);
  const events = await eventually(
    () =>
      work.server.store.db
        .selectFrom('events')
        .select('type')
        .where('account_id', '=', account.id)
        .where('type', '=', 'account_reauthorized')
        .execute(),
    (rows) => rows.length > 0,
  );
  expect(events).toHaveLength(1);
}

/**
 * A data call on a login that waits for a code answers before it ends; its result is settled in the background when
 * the login succeeds, though the resolver found no open result at the logins before. Nobody reads
 * the result through the API (which would settle it itself): the store is watched instead. `work`
 * must poll rarely (OTPILOT_POLL_MS) so the interval pass cannot stand in for the wake-up.
 */
export async function resultFirstUse(use: FirstUse): Promise<void> {
  const { work, api } = use;
  await loginWithCode(work);
  const account = await createSandboxAccount(api, 'otp');
  const call = await api.get(`/v1/accounts/${account.id}/identity?refresh=true`);
  // Parked on a reconnect as soon as the login waits for its owner's code.
  expect(['PENDING', 'RECONNECT_REQUIRED'], JSON.stringify(call.body)).toContain(call.body.status);
  await answerCode(use, account);
  const row = await eventually(
    () =>
      work.server.store.db
        .selectFrom('results')
        .select('status')
        .where('id', '=', call.body.results_id)
        .executeTakeFirstOrThrow(),
    (r) => r.status === 'OK',
    15_000,
  );
  expect(row.status).toBe('OK');
}
