import { readFileSync, rmSync } from 'node:fs';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { makeApi } from './helpers/api.js';
import { eventually, pendingRequest, scrape, sessionEnd } from './helpers/flows.js';
import { killAll, processEnv, startOtpilot } from './helpers/process.js';
import { tempDir } from './helpers/server.js';
import { dropStore } from './helpers/store.js';

/*
 * The probe's SIGKILL test, on both stores: the process dies in the middle of a login that waits for
 * a code and of a webhook request the receiver has not answered. After a restart nothing may stay
 * pending forever, no delivery may be lost, and the process must keep working.
 */

const dataDir = tempDir();
const held: ServerResponse[] = [];
afterAll(async () => {
  killAll();
  for (const response of held) response.destroy();
  rmSync(dataDir, { recursive: true, force: true });
  await dropStore(dataDir);
});

/** Webhook receiver whose first request never gets an answer; every later one gets 200. */
async function holdingReceiver() {
  const bodies: { id: string; type: string; account_id: string | null }[] = [];
  const waiters: (() => void)[] = [];
  const server = createServer((request, response) => {
    let body = '';
    request.setEncoding('utf8');
    request.on('data', (chunk: string) => {
      body += chunk;
    });
    request.on('end', () => {
      bodies.push(JSON.parse(body) as { id: string; type: string; account_id: string | null });
      if (bodies.length === 1) held.push(response);
      else response.writeHead(200).end('ok');
      for (const wake of waiters.splice(0)) wake();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    bodies,
    /** Resolves once a request satisfies `test` (the test's own timeout bounds the wait). */
    async until(test: (all: { id: string; type: string; account_id: string | null }[]) => boolean): Promise<void> {
      while (!test(bodies)) await new Promise<void>((resolve) => waiters.push(resolve));
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe('SIGKILL and restart', () => {
  it('leaves no login or request pending and loses no webhook delivery', async () => {
    const receiver = await holdingReceiver();
    // Short leases: a dead process's login is given up within seconds. A webhook request in flight
    // is leased for at least 60 s: on SQLite the restarted sole worker takes it over at once, on
    // PostgreSQL its retry comes after the lease.
    const env = await processEnv(dataDir, { OTPILOT_LEASE_MS: '1500' });
    const first = await startOtpilot([], env);
    const secrets = readFileSync(join(dataDir, 'first-start-secrets.txt'), 'utf8');
    const key = /API key\s+(otpk_\S+)/.exec(secrets)![1]!;
    const accountId = /Tour account (acc_\S+)/.exec(secrets)![1]!;
    const api1 = makeApi(first.url, key);
    const hook = await api1.post('/v1/webhooks', { url: receiver.url });
    expect(hook.status).toBe(201);

    const sessionId = await scrape(api1, accountId);
    const request = await pendingRequest(api1, accountId);
    // The first event's request reaches the receiver, which keeps it open: the process dies mid-delivery.
    await receiver.until((all) => all.length === 1);
    const inFlight = receiver.bodies[0]!;
    expect(await first.stop('SIGKILL')).toBeNull();

    const second = await startOtpilot([], env);
    const api2 = makeApi(second.url, key);
    // The login the dead process ran ends, and its request with it; nothing reads pending.
    expect(await sessionEnd(api2, sessionId, 20_000)).toMatchObject({
      state: 'failed',
      failure_category: 'worker_lost',
    });
    const closed = await eventually(
      () => api2.get(`/v1/assistance-requests?account_id=${accountId}`),
      (r) => r.body.data.every((q: { state: string }) => q.state !== 'pending'),
    );
    expect(closed.body.data.find((q: { id: string }) => q.id === request.id)).toMatchObject({ state: 'cancelled' });

    // The delivery cut off by the kill is sent again (same event), and every later event follows it.
    await receiver.until((all) => all.slice(1).some((body) => body.id === inFlight.id));
    const deliveries = await eventually(
      () => api2.get(`/v1/webhooks/${hook.body.id}/deliveries?limit=500`),
      (r) => r.body.data.length > 0 && r.body.data.every((d: { status: string }) => d.status === 'succeeded'),
      30_000,
    );
    const delivered = new Set(receiver.bodies.map((body) => body.id));
    for (const delivery of deliveries.body.data) expect(delivered.has(delivery.event_id)).toBe(true);
    const order = receiver.bodies
      .slice(1)
      .filter((body) => body.account_id === inFlight.account_id)
      .map((body) => body.id);
    // In order: the account's interrupted event comes first again, never skipped.
    expect(order[0]).toBe(inFlight.id);

    // The restarted process works: a new login opens a new request.
    const next = await scrape(api2, accountId);
    expect((await pendingRequest(api2, accountId)).session_id).toBe(next);
    expect(await second.stop()).toBe(0);
    await receiver.close();
  }, 150_000);
});
