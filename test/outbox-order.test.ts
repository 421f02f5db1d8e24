import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSandboxAccount, scrape, sessionEnd } from './helpers/flows.js';
import { startTestServer, type TestServer } from './helpers/server.js';
import { schemaFor, testDatabaseUrl, urlWithSchema } from './helpers/store.js';

/*
 * PostgreSQL hands out event numbers at insert, but transactions commit in any order. An event whose
 * transaction commits late must still reach the stream, in number order, and must not be skipped
 * because a later number was read first. PostgreSQL only (vitest.config.ts).
 */

let t: TestServer;
let client: pg.Client;

beforeAll(async () => {
  t = await startTestServer();
  client = new pg.Client({ connectionString: urlWithSchema(testDatabaseUrl(), schemaFor(t.dataDir)) });
  await client.connect();
});

afterAll(async () => {
  await client?.end();
  await t?.close();
});

describe('the outbox on PostgreSQL', () => {
  it('delivers an event that commits after a later-numbered one, first, instead of skipping it', async () => {
    const stream = await fetch(`${t.url}/v1/events`, {
      headers: { authorization: `Api-Key ${t.key}`, accept: 'text/event-stream' },
    });
    const reader = stream.body!.getReader();
    const decoder = new TextDecoder();
    let text = '';
    // One read is in flight at a time; a read that outlasts `readFor` is picked up by the next call.
    let pending: Promise<ReadableStreamReadResult<Uint8Array>> | null = null;
    const take = async (limitMs: number): Promise<boolean> => {
      pending ??= reader.read();
      const timer = new Promise<null>((resolve) => setTimeout(() => resolve(null), limitMs));
      const result = await Promise.race([pending, timer]);
      if (result === null) return false;
      pending = null;
      if (result.done) throw new Error('stream ended');
      text += decoder.decode(result.value, { stream: true });
      return true;
    };
    const read = async (until: (all: string) => boolean) => {
      while (!until(text)) await take(30_000);
    };
    /** Everything the stream sends within `ms` (a stream that must stay silent is watched this long). */
    const readFor = async (ms: number) => {
      const end = Date.now() + ms;
      while (Date.now() < end) await take(end - Date.now());
    };
    // A transaction takes an event number and stays open ...
    await client.query('begin');
    const late = await client.query<{ seq: number }>(
      `insert into events (id, org_id, account_id, type, status, data, occurred_at)
       values ('evt_late', $1, null, 'webhook_test', 'info', '{"late":true}', $2) returning seq`,
      [t.orgId, Date.now()],
    );
    // ... while a login writes later-numbered events and commits them.
    const account = await createSandboxAccount(t.api, 'alice');
    expect((await sessionEnd(t.api, await scrape(t.api, account.id))).state).toBe('succeeded');
    const { rows } = await client.query<{ seq: string }>(
      "select max(seq) as seq from events where account_id = $1 and type = 'scrape_succeeded'",
      [account.id],
    );
    expect(Number(rows[0]!.seq)).toBeGreaterThan(Number(late.rows[0]!.seq));
    // Nothing after the open number is sent, through several of the stream's polls (200 ms here):
    // the stream waits at the gap.
    await readFor(1500);
    expect(text).not.toContain(account.id);
    await client.query('commit');
    await read((all) => all.includes('scrape_succeeded'));
    await reader.cancel();
    const ids = [...text.matchAll(/^id: (.*)$/gm)].map((m) => m[1]);
    expect(ids).toContain('evt_late');
    const types = [...text.matchAll(/^data: (.*)$/gm)].map((m) => (JSON.parse(m[1]!) as { type: string }).type);
    expect(types.indexOf('webhook_test')).toBeLessThan(types.indexOf('scrape_succeeded'));
  });
});
