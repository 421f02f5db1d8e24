import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import addFormats from 'ajv-formats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AssistanceSchema } from '../src/assistance/schemas.js';
import { EVENT_TYPES, type EventType } from '../src/core/events.js';
import { EnvelopeDocSchema, EVENT_CATALOG, withEventTable } from '../src/events/catalog.js';
import { selectEvents, toEnvelope } from '../src/events/outbox.js';
import { MovementSchema } from '../src/movements/schemas.js';
import { latestCode, sessionEnd, startAssistedLogin } from './helpers/flows.js';
import { startTestServer, type TestServer } from './helpers/server.js';

/** docs/webhooks.md against the code's event list and schemas, and the API reference at /docs. */

const WEBHOOKS_MD = join(import.meta.dirname, '..', 'docs', 'webhooks.md');
const ajv = new Ajv({ strict: false, allErrors: true });
addFormats.default(ajv);
// The data schemas refer to the shared ones by id, as the server registers them.
ajv.addSchema(AssistanceSchema);
ajv.addSchema(MovementSchema);
const validData = (type: EventType, data: unknown) => {
  const validate = ajv.compile(EVENT_CATALOG[type].schema);
  return validate(data) ? null : ajv.errorsText(validate.errors);
};

let t: TestServer;
beforeAll(async () => {
  t = await startTestServer();
});
afterAll(async () => {
  await t?.close();
});

describe('docs/webhooks.md', () => {
  it('has the event table the code generates (run `npm run docs:events` when this fails)', () => {
    const doc = readFileSync(WEBHOOKS_MD, 'utf8');
    expect(withEventTable(doc)).toBe(doc);
    for (const type of EVENT_TYPES) expect(doc).toContain(`| \`${type}\` |`);
  });

  it('shows only example payloads that validate against the schemas', () => {
    const blocks = [...readFileSync(WEBHOOKS_MD, 'utf8').matchAll(/```json\n([\s\S]*?)```/g)].map((m) => m[1]!);
    let envelopes = 0;
    let data = 0;
    for (const block of blocks) {
      const value = JSON.parse(block);
      if (typeof value?.type === 'string' && 'data' in value && 'status' in value) {
        if (value.type === 'webhook_test') continue; // a test delivery, not an event type
        envelopes++;
        expect(ajv.validate(EnvelopeDocSchema, value), `${block}: ${ajv.errorsText()}`).toBe(true);
        expect(EVENT_TYPES, block).toContain(value.type);
        expect(validData(value.type, value.data), block).toBeNull();
      }
    }
    // The per-type examples of the generated section.
    for (const type of EVENT_TYPES) {
      expect(validData(type, EVENT_CATALOG[type].example), type).toBeNull();
      const shown = blocks.filter((b) => b.trim() === JSON.stringify(EVENT_CATALOG[type].example));
      expect(shown, type).toHaveLength(1);
      data++;
    }
    expect(envelopes).toBeGreaterThan(0);
    expect(data).toBe(EVENT_TYPES.length);
  });

  it('describes the data the server really sends', async () => {
    const { account, sessionId, request } = await startAssistedLogin(t.api);
    const code = await latestCode(t.api, account.username);
    await t.api.post(`/v1/accounts/${account.id}/otp`, { code, request_id: request.id });
    expect((await sessionEnd(t.api, sessionId)).state).toBe('succeeded');
    // As senders read them: a movement event's data is its stored movement.
    const events = await selectEvents(t.server.store.db).where('e.account_id', '=', account.id).execute();
    const seen = new Set<string>();
    for (const event of events) {
      seen.add(event.type);
      expect(validData(event.type as EventType, toEnvelope(event)?.data), event.type).toBeNull();
    }
    expect([...seen]).toEqual(
      expect.arrayContaining(['assistance_required', 'assistance_fulfilled', 'scrape_succeeded', 'bank_movement']),
    );
  });
});

describe('the API reference', () => {
  it('is titled, grouped by feature, with the auth schemes, the error shape and an example in every operation', async () => {
    const doc = (await t.api.get('/openapi.json', null)).body;
    expect(doc.info.title).toBe('otpilot API reference');
    expect(doc.info.description).toContain('"error": { "code"');
    expect(Object.keys(doc.components.securitySchemes).sort()).toEqual(['apiKey', 'appToken', 'session']);
    const tags = new Set(doc.tags.map((tag: { name: string }) => tag.name));
    let operations = 0;
    for (const [path, item] of Object.entries<any>(doc.paths)) {
      for (const [method, operation] of Object.entries<any>(item)) {
        operations++;
        const where = `${method.toUpperCase()} ${path}`;
        expect(operation.tags?.length, where).toBeGreaterThan(0);
        for (const tag of operation.tags) expect(tags.has(tag), `${where}: ${tag}`).toBe(true);
        const bodies = [operation.requestBody, ...Object.values<any>(operation.responses ?? {})]
          .flatMap((b) => Object.values<any>(b?.content ?? {}))
          .filter((media) => media.schema);
        for (const media of bodies) expect(media.example ?? media.examples, where).toBeDefined();
      }
    }
    expect(operations).toBeGreaterThan(40);
    expect(doc.paths['/widget/v1/reconnects/{id}']?.get?.security ?? [{ appToken: [] }]).toEqual([{ appToken: [] }]);

    const page = await t.api.get('/docs/', null);
    expect(page.status).toBe(200);
    expect(page.body).toContain('<title>otpilot API reference</title>');
    expect(page.body).toContain('favicon.svg');
  });

  it('serves a favicon', async () => {
    for (const path of ['/favicon.ico', '/favicon.svg']) {
      const icon = await t.api.raw(path, {});
      expect(icon.status, path).toBe(200);
      expect(icon.headers.get('content-type')).toMatch(/^image\/svg\+xml/);
      expect(String(icon.body)).toContain('<svg');
    }
  });
});
