import { Webhook } from 'standardwebhooks';
import { afterEach, describe, expect, it } from 'vitest';
import { createSandboxAccount, eventually, latestCode, pendingRequest, scrape, sessionEnd } from './helpers/flows.js';
import { freePort, type Receiver, startReceiver } from './helpers/receiver.js';
import { startTestServer, type TestServer, tempDir } from './helpers/server.js';

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

async function server(options: Parameters<typeof startTestServer>[0] = {}): Promise<TestServer> {
  const t = await startTestServer(options);
  cleanup.push(() => t.close());
  return t;
}

async function receiver(port?: number): Promise<Receiver> {
  const r = await startReceiver(port);
  cleanup.push(() => r.close());
  return r;
}

/** Verifies a received request exactly as a receiver would, with the standardwebhooks package. */
function verify(secret: string, request: { body: string; headers: Record<string, unknown> }) {
  const headers = {
    'webhook-id': String(request.headers['webhook-id']),
    'webhook-timestamp': String(request.headers['webhook-timestamp']),
    'webhook-signature': String(request.headers['webhook-signature']),
  };
  return new Webhook(secret).verify(request.body, headers) as { id: string; type: string; status: string };
}

/** Waits until the endpoint's newest delivery has recorded `attempts` attempts (before moving the clock). */
async function recorded(t: TestServer, endpointId: string, attempts: number) {
  await eventually(
    () => t.api.get(`/v1/webhooks/${endpointId}/deliveries`),
    (r) => r.body.data[0]?.attempt === attempts,
  );
}

/** A clock the test moves; everything else (timers, sockets) runs in real time. */
function manualClock() {
  let offset = 0;
  return { now: () => Date.now() + offset, advance: (ms: number) => (offset += ms) };
}

describe('organization webhook endpoints', () => {
  it('deliver signed events a receiver verifies with standardwebhooks, filtered by type', async () => {
    const t = await server();
    const hook = await receiver();
    const created = await t.api.post('/v1/webhooks', {
      url: hook.url,
      events: ['assistance_required', 'assistance_fulfilled'],
      description: 'ops',
    });
    expect(created.status).toBe(201);
    expect(created.body.secret).toMatch(/^whsec_/);
    expect((await t.api.get(`/v1/webhooks/${created.body.id}`)).body.secret).toBeUndefined();

    const account = await createSandboxAccount(t.api, 'otp');
    const sessionId = await scrape(t.api, account.id);
    await pendingRequest(t.api, account.id);
    const code = await latestCode(t.api, account.username);
    await t.api.post(`/v1/accounts/${account.id}/otp?wait=true`, { code });
    await sessionEnd(t.api, sessionId);
    const [first, second] = await hook.waitFor(2);
    const events = [first!, second!].map((r) => verify(created.body.secret, r as any));
    expect(events.map((e) => e.type)).toEqual(['assistance_required', 'assistance_fulfilled']);
    expect(events.map((e) => e.status)).toEqual(['assistance.requested', 'assistance.fulfilled']);
    expect(first!.headers['webhook-id']).toBe(first!.json.id);
    expect(first!.json.data).toMatchObject({ account_id: account.id, state: 'pending', descriptor: { length: 6 } });
    // A tampered body fails verification.
    expect(() =>
      verify(created.body.secret, { ...first!, body: first!.body.replace('pending', 'fulfilled') } as any),
    ).toThrow();
    // Only the two subscribed types arrived (no scrape_succeeded, no bank_movement).
    await t.server.delivery.drain();
    expect(hook.received).toHaveLength(2);

    const log = await t.api.get(`/v1/webhooks/${created.body.id}/deliveries`);
    expect(log.body.data).toHaveLength(2);
    expect(log.body.data[0]).toMatchObject({ status: 'succeeded', attempt: 1, response_status: 200 });
  });

  it('retries a 500 on the schedule and delivers with the same webhook-id', async () => {
    const clock = manualClock();
    const t = await server({ clock: clock.now });
    const hook = await receiver();
    hook.respond = (_request, index) => (index < 3 ? 500 : 200);
    const endpoint = (await t.api.post('/v1/webhooks', { url: hook.url, events: ['scrape_succeeded'] })).body;
    const account = await createSandboxAccount(t.api, 'alice');
    await sessionEnd(t.api, await scrape(t.api, account.id));
    await hook.waitFor(1);
    // The schedule: at once, then 5 s, 5 min, 30 min (each ±20 %).
    for (const [count, wait] of [
      [2, 7_000],
      [3, 7 * 60_000],
      [4, 40 * 60_000],
    ] as const) {
      await recorded(t, endpoint.id, count - 1);
      clock.advance(wait);
      await hook.waitFor(count);
    }
    const ids = new Set(hook.received.map((r) => r.headers['webhook-id']));
    expect(ids.size).toBe(1);
    expect(hook.received.map((r) => r.status)).toEqual([500, 500, 500, 200]);
    // The first arrived in real time and verifies as is; the later ones were signed on the moved clock,
    // so a real receiver would refuse them as "too new": check their signatures directly.
    expect(verify(endpoint.secret, hook.received[0] as any).type).toBe('scrape_succeeded');
    for (const request of hook.received.slice(1)) {
      const id = String(request.headers['webhook-id']);
      const expected = new Webhook(endpoint.secret).sign(
        id,
        new Date(Number(request.headers['webhook-timestamp']) * 1000),
        request.body,
      );
      expect(request.headers['webhook-signature']).toBe(expected);
    }

    const deliveries = (await t.api.get(`/v1/webhooks/${endpoint.id}/deliveries`)).body.data;
    expect(deliveries).toHaveLength(1);
    const detail = await eventually(
      () => t.api.get(`/v1/webhooks/${endpoint.id}/deliveries/${deliveries[0].id}`),
      (r) => r.body.status === 'succeeded',
    );
    expect(detail.body.attempts.map((a: any) => a.response_status)).toEqual([500, 500, 500, 200]);
    expect(detail.body.attempts[0].response_body).toBe('nope');
  });

  it('delivers every event after a process restart while the endpoint was down', async () => {
    const clock = manualClock();
    const dataDir = tempDir();
    const port = await freePort();
    const first = await startTestServer({ clock: clock.now, dataDir });
    const reopen = { key: first.key, tourAccountId: first.tourAccountId, orgId: first.orgId };
    const endpoint = (
      await first.api.post('/v1/webhooks', {
        url: `http://127.0.0.1:${port}/hook`,
        events: ['scrape_succeeded', 'login_failed'],
      })
    ).body;
    const good = await createSandboxAccount(first.api, 'alice');
    const bad = await createSandboxAccount(first.api, 'alice', {}, 'wrong');
    const sessions = [await scrape(first.api, good.id), await scrape(first.api, bad.id)];
    for (const id of sessions) await sessionEnd(first.api, id);
    // Both first attempts fail (nothing listens), then the process stops.
    await eventually(
      () => first.api.get(`/v1/webhooks/${endpoint.id}/deliveries`),
      (r) => r.body.data.length === 2 && r.body.data.every((d: any) => d.status === 'failed'),
    );
    await first.close();

    const hook = await receiver(port);
    clock.advance(10_000);
    const second = await server({ clock: clock.now, dataDir, reopen });
    const received = await hook.waitFor(2);
    expect(received.map((r) => verify(endpoint.secret, r as any).type).sort()).toEqual([
      'login_failed',
      'scrape_succeeded',
    ]);
    // The receiver answers before the sender records the answer: wait for the records.
    const log = (
      await eventually(
        () => second.api.get(`/v1/webhooks/${endpoint.id}/deliveries`),
        (r) => r.body.data.every((d: any) => d.status === 'succeeded'),
      )
    ).body.data;
    expect(log).toHaveLength(2);
    expect(log.every((d: any) => d.status === 'succeeded' && d.attempt === 2)).toBe(true);
  });

  it("keeps each account's events in order while another account's flow on", async () => {
    const clock = manualClock();
    const t = await server({ clock: clock.now });
    const hook = await receiver();
    const a = await createSandboxAccount(t.api, 'alice');
    const b = await createSandboxAccount(t.api, 'alice');
    // A's first event is refused once; B's events must not wait for it, A's second must.
    let refusedOnce = false;
    hook.respond = (request) => {
      if (!refusedOnce && request.json.account_id === a.id) {
        refusedOnce = true;
        return 503;
      }
      return 200;
    };
    await t.api.post('/v1/webhooks', { url: hook.url, events: ['scrape_succeeded'] });
    await sessionEnd(t.api, await scrape(t.api, a.id));
    await hook.waitFor(1);
    await sessionEnd(t.api, await scrape(t.api, a.id));
    await sessionEnd(t.api, await scrape(t.api, b.id));
    await hook.waitFor(2);
    await t.server.delivery.drain();
    // Only A's refused first event and B's event so far: A's second waits behind A's first.
    expect(hook.received.map((r) => r.json.account_id)).toEqual([a.id, b.id]);
    clock.advance(7_000);
    const all = await hook.waitFor(4);
    const forA = all.filter((r) => r.json.account_id === a.id && r.status === 200).map((r) => r.json.data.session_id);
    const sessionsOfA = (await t.api.get(`/v1/accounts/${a.id}/sessions`)).body.data.map((s: any) => s.id).reverse();
    expect(forA).toEqual(sessionsOfA);
  });

  it('sends a test event, retries a delivery by hand, and disables an endpoint failing for 5 days', async () => {
    const clock = manualClock();
    const t = await server({ clock: clock.now });
    const hook = await receiver();
    hook.respond = () => 500;
    const endpoint = (await t.api.post('/v1/webhooks', { url: hook.url, events: ['scrape_succeeded'] })).body;
    const test = await t.api.post(`/v1/webhooks/${endpoint.id}/test`);
    expect(test.status).toBe(202);
    const [probe] = await hook.waitFor(1);
    expect(verify(endpoint.secret, probe as any).type).toBe('webhook_test');

    hook.respond = () => 200;
    // The receiver answers before the sender records the answer: retry once the failure is recorded.
    await eventually(
      () => t.api.get(`/v1/webhooks/${endpoint.id}/deliveries/${test.body.id}`),
      (r) => r.body.status === 'failed',
    );
    const retried = await t.api.post(`/v1/webhooks/${endpoint.id}/deliveries/${test.body.id}/retry`);
    expect(retried.status).toBe(202);
    await hook.waitFor(2);
    expect(hook.received[1]!.headers['webhook-id']).toBe(probe!.headers['webhook-id']);
    await eventually(
      () => t.api.get(`/v1/webhooks/${endpoint.id}/deliveries/${test.body.id}`),
      (r) => r.body.status === 'succeeded',
    );
    expect((await t.api.post(`/v1/webhooks/${endpoint.id}/deliveries/${test.body.id}/retry`)).status).toBe(409);

    // Fails from now on; five days later the next failure disables it, with an event.
    hook.respond = () => 500;
    const account = await createSandboxAccount(t.api, 'alice');
    await sessionEnd(t.api, await scrape(t.api, account.id));
    await hook.waitFor(3);
    await recorded(t, endpoint.id, 1);
    clock.advance(5 * 86_400_000 + 60_000);
    await sessionEnd(t.api, await scrape(t.api, account.id));
    const disabled = await eventually(
      () => t.api.get(`/v1/webhooks/${endpoint.id}`),
      (r) => r.body.enabled === false,
    );
    expect(disabled.body.disabled_reason).toContain('5 days');
    const events = await t.server.store.db
      .selectFrom('events')
      .select(['type', 'data'])
      .where('type', '=', 'webhook_endpoint_disabled')
      .execute();
    expect(events).toHaveLength(1);
    const reenabled = await t.api.patch(`/v1/webhooks/${endpoint.id}`, { enabled: true });
    expect(reenabled.body).toMatchObject({ enabled: true, disabled_reason: null, failing_since: null });
  });
});

describe('fan-out without subscribers', () => {
  it('creates no delivery while nothing subscribes, and an endpoint created later gets only the events after it', async () => {
    const t = await server();
    const db = t.server.store.db;
    const account = await createSandboxAccount(t.api, 'alice');
    await sessionEnd(t.api, await scrape(t.api, account.id));
    await t.server.delivery.drain();
    const count = async () =>
      Number(
        (
          await db
            .selectFrom('deliveries')
            .select((eb) => eb.fn.countAll().as('n'))
            .executeTakeFirstOrThrow()
        ).n,
      );
    expect(await count()).toBe(0);
    // The cursor moved past every event so far: none of them is delivered to a later subscriber.
    const newest = async () =>
      Number(
        (
          await db
            .selectFrom('events')
            .select((eb) => eb.fn.max('seq').as('seq'))
            .executeTakeFirstOrThrow()
        ).seq,
      );
    const before = await newest();
    expect(before).toBeGreaterThan(0);
    const cursor = await db
      .selectFrom('settings')
      .select('value')
      .where('key', '=', 'webhooks_dispatched_seq')
      .executeTakeFirstOrThrow();
    expect(Number(cursor.value)).toBe(before);

    const hook = await receiver();
    const created = await t.api.post('/v1/webhooks', { url: hook.url });
    expect(created.status).toBe(201);
    await sessionEnd(t.api, await scrape(t.api, account.id));
    await t.server.delivery.drain();
    const deliveries = await db.selectFrom('deliveries').select(['event_seq', 'endpoint_id']).execute();
    expect(deliveries.length).toBeGreaterThan(0);
    expect(deliveries.every((d) => Number(d.event_seq) > before && d.endpoint_id === created.body.id)).toBe(true);
    expect(deliveries).toHaveLength((await newest()) - before);
    expect((await hook.waitFor(deliveries.length)).map((r) => r.json.type)).toContain('scrape_succeeded');
  });
});

describe("an account's own destinations", () => {
  it('notify with the configured Authorization and carry movements with the extra fields to the result webhook', async () => {
    const t = await server();
    const notify = await receiver();
    const results = await receiver();
    const account = await createSandboxAccount(t.api, 'alice', {
      notification_endpoint_url: notify.url,
      notification_auth_type: 'bearer',
      notification_auth_token: 'notify-token-123',
      notification_events: ['scrape_succeeded'],
      webhook_url: results.url,
      webhook_auth_type: 'api_key',
      webhook_auth_token: 'result-token-456',
      webhook_extra_fields: { tenant: 'acme', priority: 2 },
    });
    const config = (await t.api.get(`/v1/accounts/${account.id}/config`)).body;
    expect(config.notification_auth_token).toBe('********');
    expect(JSON.stringify(config)).not.toContain('notify-token-123');
    expect(JSON.stringify(config)).not.toContain('result-token-456');

    const session = await sessionEnd(t.api, await scrape(t.api, account.id));
    const [notice] = await notify.waitFor(1);
    const secret = (await t.api.get(`/v1/accounts/${account.id}/signing-secret`)).body.secret;
    expect(secret).toMatch(/^whsec_/);
    expect(notice!.headers.authorization).toBe('Bearer notify-token-123');
    expect(verify(secret, notice as any).type).toBe('scrape_succeeded');

    const movements = await results.waitFor(session.movements_new);
    for (const request of movements) {
      expect(request.headers.authorization).toBe('Api-Key result-token-456');
      expect(request.json).toMatchObject({
        type: 'bank_movement',
        status: 'movement.created',
        tenant: 'acme',
        priority: 2,
        account_id: account.id,
      });
      verify(secret, request as any);
    }
    await t.server.delivery.drain();
    expect(notify.received).toHaveLength(1);

    const rotated = (await t.api.post(`/v1/accounts/${account.id}/signing-secret/rotate`)).body.secret;
    expect(rotated).not.toBe(secret);
    // Hundreds of deliveries: on a busy machine they take longer than the default 30 s, but never stall.
  }, 120_000);

  it('silent ingestion sends no movements', async () => {
    const t = await server();
    const results = await receiver();
    const account = await createSandboxAccount(t.api, 'alice', { webhook_url: results.url, silent_ingestion: true });
    const session = await sessionEnd(t.api, await scrape(t.api, account.id));
    expect(session.movements_new).toBeGreaterThan(0);
    await t.server.delivery.drain();
    expect(results.received).toHaveLength(0);
  });
});

describe('destination URLs', () => {
  it('are refused at save time when private, unresolvable or not http(s)', async () => {
    const t = await server({ env: { OTPILOT_ALLOW_PRIVATE_URLS: 'false' } });
    for (const url of [
      'http://127.0.0.1:8080/hook',
      'http://10.1.2.3/hook',
      'http://169.254.169.254/latest',
      'http://[::1]/hook',
      'http://host.invalid/hook',
      'ftp://example.org/x',
    ]) {
      const reply = await t.api.post('/v1/webhooks', { url });
      expect(reply.status, url).toBe(400);
      expect(reply.body.error.details[0].path).toBe('/url');
    }
    const account = await createSandboxAccount(t.api, 'alice');
    const config = await t.api.put(`/v1/accounts/${account.id}/config`, {
      notification_endpoint_url: 'http://192.168.1.10/n',
      webhook_url: 'http://localhost/w',
    });
    expect(config.status).toBe(400);
    expect(config.body.error.details.map((d: any) => d.path).sort()).toEqual([
      '/notification_endpoint_url',
      '/webhook_url',
    ]);
    expect((await t.api.get('/v1/webhooks')).body.data).toHaveLength(0);
  });
});
