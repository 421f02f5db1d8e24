import twilio from 'twilio';
import { afterEach, describe, expect, it } from 'vitest';
import { sameSender, toE164 } from '../src/core/phone.js';
import { makeKeysService } from '../src/keys/service.js';
import { twilioSignature, verifyTwilioSignature } from '../src/relay/twilio-signature.js';
import type { Api } from './helpers/api.js';
import { gatedConnectors } from './helpers/first-use.js';
import {
  auditOf,
  createSandboxAccount,
  eventually,
  nextEvent,
  pendingRequest,
  scrape,
  sessionEnd,
  statusUntil,
} from './helpers/flows.js';
import { startTestServer, type TestServer } from './helpers/server.js';

const TOKEN = 'twilio-auth-token-for-tests';
const EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>';

let t: TestServer | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

interface Sms {
  body: string;
  code: string;
  to: string;
  from: string;
}

async function phoneOf(api: Api, username: string): Promise<string> {
  return (await api.get(`/sandbox-bank/phone/${encodeURIComponent(username)}`, null)).body.phone;
}

/** The newest SMS on a sandbox user's phone, once there is one. */
async function latestSms(api: Api, username: string): Promise<Sms> {
  const reply = await eventually(
    () => api.get(`/sandbox-bank/phone/${encodeURIComponent(username)}`, null),
    (r) => r.body.messages.length > 0,
  );
  return reply.body.messages[0];
}

/** A sandbox account whose codes arrive on its own sandbox phone, routed by `otp_phone`. */
async function accountWithPhone(api: Api, username = 'otp', config: Record<string, unknown> = {}) {
  const account = await createSandboxAccount(api, username, config);
  const phone = await phoneOf(api, account.username);
  const put = await api.put(`/v1/accounts/${account.id}/config`, { otp_phone: phone, ...config });
  expect(put.status, JSON.stringify(put.body)).toBe(200);
  return { ...account, phone };
}

/** The form fields Twilio posts for one inbound SMS. */
function twilioParams(sms: Pick<Sms, 'to' | 'from' | 'body'>): Record<string, string> {
  const sid = `SM${Math.random().toString(16).slice(2).padEnd(32, '0')}`;
  return {
    ToCountry: 'NL',
    SmsMessageSid: sid,
    NumMedia: '0',
    SmsSid: sid,
    SmsStatus: 'received',
    Body: sms.body,
    To: sms.to,
    NumSegments: '1',
    MessageSid: sid,
    AccountSid: 'AC0123456789abcdef0123456789abcdef',
    From: sms.from,
    ApiVersion: '2010-04-01',
  };
}

async function postTwilio(url: string, params: Record<string, string>, signature: string | null) {
  const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' };
  if (signature !== null) headers['x-twilio-signature'] = signature;
  const response = await fetch(url, { method: 'POST', headers, body: new URLSearchParams(params).toString() });
  const text = await response.text();
  return { status: response.status, text, type: response.headers.get('content-type') ?? '' };
}

async function keyWith(server: TestServer, scopes: string, accountIds: string[] | null = null): Promise<string> {
  const created = await makeKeysService({ db: server.server.store.db, clock: Date.now }).create({
    orgId: server.orgId,
    name: `relay test ${scopes}`,
    scopes,
    accountIds,
    createdBy: null,
  });
  if (!created.ok) throw new Error(created.message);
  return created.value.key;
}

async function createRelay(api: Api, body: Record<string, unknown>) {
  const reply = await api.post('/v1/relays', body);
  expect(reply.status, JSON.stringify(reply.body)).toBe(201);
  return reply.body as { id: string; provider: string; url: string };
}

describe('phone numbers', () => {
  it('are compared in E.164; senders by number or by name', () => {
    expect(toE164('+31 6 1234-5678')).toBe('+31612345678');
    expect(toE164('0031612345678')).toBe('+31612345678');
    expect(toE164('(+1) 415 555 0100')).toBeNull();
    expect(toE164('+1 (415) 555-0100')).toBe('+14155550100');
    for (const national of ['0612345678', '12345', 'SandboxBank', '+0612345678']) expect(toE164(national)).toBeNull();
    expect(sameSender('SandboxBank', 'SANDBOXBANK')).toBe(true);
    expect(sameSender('+31 20 123 4567', '+31201234567')).toBe(true);
    expect(sameSender('+31201234567', 'SandboxBank')).toBe(false);
  });
});

describe('Twilio relay', () => {
  it("signs like Twilio's own helper, repeated fields and default ports included", () => {
    const params = { Body: 'code 123456', To: '+31611111111', From: 'Bank', MediaUrl: ['b', 'a', 'b'] };
    for (const url of ['https://otp.example.com/relay/twilio/rly_1?x=1', 'http://127.0.0.1:3000/relay/twilio/rly_1']) {
      const ours = twilioSignature(TOKEN, url, params);
      expect(ours).toBe(twilio.getExpectedTwilioSignature(TOKEN, url, params));
      expect(twilio.validateRequest(TOKEN, ours, url, params)).toBe(true);
      expect(verifyTwilioSignature(TOKEN, ours, url, params)).toBe(true);
    }
    // Twilio may sign the URL with or without the scheme's default port.
    const withPort = twilio.getExpectedTwilioSignature(TOKEN, 'https://otp.example.com:443/r', {});
    expect(verifyTwilioSignature(TOKEN, withPort, 'https://otp.example.com/r', {})).toBe(true);
    expect(verifyTwilioSignature('another-token', withPort, 'https://otp.example.com/r', {})).toBe(false);
    expect(verifyTwilioSignature(TOKEN, undefined, 'https://otp.example.com/r', {})).toBe(false);
  });

  it('completes a login with an SMS signed by Twilio', async () => {
    t = await startTestServer();
    const { api } = t;
    const relay = await createRelay(api, { provider: 'twilio', auth_token: TOKEN });
    expect(relay).toEqual({
      id: expect.stringMatching(/^rly_/),
      provider: 'twilio',
      url: `${t.url}/relay/twilio/${relay.id}`,
      created_at: expect.any(String),
    });
    const account = await accountWithPhone(api);
    const sessionId = await scrape(api, account.id);
    const request = await pendingRequest(api, account.id);
    const sms = await latestSms(api, account.username);

    const params = twilioParams(sms);
    const answer = await postTwilio(relay.url, params, twilio.getExpectedTwilioSignature(TOKEN, relay.url, params));
    expect(answer).toEqual({ status: 200, text: EMPTY_TWIML, type: expect.stringContaining('text/xml') });

    expect((await sessionEnd(api, sessionId)).state).toBe('succeeded');
    const [done] = (await api.get(`/v1/assistance-requests?account_id=${account.id}`)).body.data;
    expect(done).toMatchObject({
      id: request.id,
      state: 'fulfilled',
      resolution: { via: 'sms_relay', reason: 'accepted' },
    });
    const relayed = await auditOf(t.server.store.db, account.id, 'relay.sms');
    expect(relayed.map((a) => [a.actor_type, a.actor_id, a.outcome])).toEqual([['system', relay.id, 'submitted']]);
    const submitted = await auditOf(t.server.store.db, account.id, 'otp.submit');
    expect(submitted).toHaveLength(1);
    expect(JSON.parse(submitted[0]!.details!)).toEqual({ via: 'sms_relay' });
    // Neither the code nor the text ever reaches the audit log.
    for (const entry of [...relayed, ...submitted]) {
      expect(JSON.stringify(entry)).not.toContain(sms.code);
      expect(JSON.stringify(entry)).not.toContain('login code');
    }
  });

  it("takes the sandbox phone's own Twilio-signed forwards, with no one in the loop", async () => {
    t = await startTestServer();
    const { api } = t;
    const relay = await createRelay(api, { provider: 'twilio', auth_token: TOKEN });
    const account = await accountWithPhone(api);
    const forward = await api.put(
      `/sandbox-bank/phone/${encodeURIComponent(account.username)}/forward`,
      { url: relay.url, format: 'twilio', auth_token: TOKEN },
      null,
    );
    expect(forward.status).toBe(200);
    expect((await sessionEnd(api, await scrape(api, account.id))).state).toBe('succeeded');
    const [done] = (await api.get(`/v1/assistance-requests?account_id=${account.id}`)).body.data;
    expect(done.resolution).toEqual({ via: 'sms_relay', reason: 'accepted' });
  });

  it('refuses a missing or wrong signature with 403 and does not use the SMS', async () => {
    t = await startTestServer();
    const { api } = t;
    const relay = await createRelay(api, { provider: 'twilio', auth_token: TOKEN });
    const account = await accountWithPhone(api);
    const sessionId = await scrape(api, account.id);
    const request = await pendingRequest(api, account.id);
    const params = twilioParams(await latestSms(api, account.username));

    const forged = [
      null,
      'not-a-signature',
      twilio.getExpectedTwilioSignature('a-guessed-token', relay.url, params),
      twilio.getExpectedTwilioSignature(TOKEN, `${t.url}/relay/twilio/rly_other`, params),
      twilio.getExpectedTwilioSignature(TOKEN, relay.url, { ...params, Body: 'Your code is 000000' }),
    ];
    for (const signature of forged) {
      const refused = await postTwilio(relay.url, params, signature);
      expect(refused.status, String(signature)).toBe(403);
      expect(JSON.parse(refused.text)).toEqual({ error: { code: 'FORBIDDEN', message: expect.any(String) } });
    }
    const unknown = twilio.getExpectedTwilioSignature(TOKEN, `${t.url}/relay/twilio/rly_nope`, params);
    expect((await postTwilio(`${t.url}/relay/twilio/rly_nope`, params, unknown)).status).toBe(404);

    const untouched = (await api.get(`/v1/accounts/${account.id}/otp`)).body.assistance_request;
    expect(untouched).toMatchObject({ id: request.id, state: 'pending', attempts: 0, code_in_flight: false });
    expect(await auditOf(t.server.store.db, account.id, 'otp.submit')).toEqual([]);
    expect(await auditOf(t.server.store.db, account.id, 'relay.sms')).toEqual([]);

    const signed = await postTwilio(relay.url, params, twilio.getExpectedTwilioSignature(TOKEN, relay.url, params));
    expect(signed.status).toBe(200);
    expect((await sessionEnd(api, sessionId)).state).toBe('succeeded');
  });

  it('checks the signature against the public URL a proxy forwarded (OTPILOT_TRUST_PROXY)', async () => {
    t = await startTestServer({ env: { OTPILOT_TRUST_PROXY: 'true' } });
    const { api } = t;
    const proxied = { 'x-forwarded-proto': 'https', 'x-forwarded-host': 'otp.example.com' };
    const created = await api.raw('/v1/relays', {
      method: 'POST',
      headers: { authorization: `Api-Key ${t.key}`, 'content-type': 'application/json', ...proxied },
      body: JSON.stringify({ provider: 'twilio', auth_token: TOKEN }),
    });
    const publicUrl = `https://otp.example.com/relay/twilio/${created.body.id}`;
    expect(created.body.url).toBe(publicUrl);
    const account = await accountWithPhone(api);
    const sessionId = await scrape(api, account.id);
    await pendingRequest(api, account.id);
    const params = twilioParams(await latestSms(api, account.username));
    const post = (signedFor: string) =>
      fetch(`${t!.url}/relay/twilio/${created.body.id}`, {
        method: 'POST',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          'x-twilio-signature': twilio.getExpectedTwilioSignature(TOKEN, signedFor, params),
          ...proxied,
        },
        body: new URLSearchParams(params).toString(),
      });
    // Signed for the address otpilot listens on, not the one Twilio called: refused.
    expect((await post(`${t.url}/relay/twilio/${created.body.id}`)).status).toBe(403);
    expect((await post(publicUrl)).status).toBe(200);
    expect((await sessionEnd(api, sessionId)).state).toBe('succeeded');
  });
});

describe('SMS routing', () => {
  it('refuses an SMS with two candidate codes, records why, and takes the next clear one', async () => {
    t = await startTestServer();
    const { api } = t;
    const account = await accountWithPhone(api);
    const sessionId = await scrape(api, account.id);
    const request = await pendingRequest(api, account.id);
    const sms = await latestSms(api, account.username);
    const other = String((Number(sms.code) + 1) % 1_000_000).padStart(6, '0');

    const refused = await api.post('/v1/relay/sms', {
      to: sms.to,
      from: sms.from,
      body: `Your code is ${sms.code}. Earlier code: ${other}.`,
    });
    expect(refused.status).toBe(200);
    expect(refused.body).toEqual({
      matched: true,
      request_id: request.id,
      submitted: false,
      reason: 'ambiguous_code',
    });
    const event = await nextEvent(t, 'sms_relay_refused', account.id);
    expect(event).toMatchObject({
      status: 'relay.refused',
      data: { request_id: request.id, reason: 'ambiguous_code', relay_id: null },
    });
    expect(JSON.stringify(event)).not.toContain(sms.code);
    const audit = await auditOf(t.server.store.db, account.id, 'relay.sms');
    expect(audit.map((a) => [a.actor_type, a.outcome])).toEqual([['api_key', 'ambiguous_code']]);
    expect((await api.get(`/v1/accounts/${account.id}/otp`)).body.assistance_request).toMatchObject({
      attempts: 0,
      code_in_flight: false,
    });

    const taken = await api.post('/v1/relay/sms', { to: sms.to, from: sms.from, body: sms.body });
    expect(taken.body).toEqual({ matched: true, request_id: request.id, submitted: true, reason: null });
    expect((await sessionEnd(api, sessionId)).state).toBe('succeeded');
  });

  it('refuses to choose between two accounts waiting on one number', async () => {
    t = await startTestServer();
    const { api } = t;
    const first = await accountWithPhone(api);
    const second = await createSandboxAccount(api, 'otp', { otp_phone: first.phone });
    const firstSession = await scrape(api, first.id);
    const secondSession = await scrape(api, second.id);
    await pendingRequest(api, first.id);
    await pendingRequest(api, second.id);
    const sms = await latestSms(api, first.username);

    const refused = await api.post('/v1/relay/sms', { to: sms.to, from: sms.from, body: sms.body });
    expect(refused.body).toEqual({
      matched: false,
      request_id: null,
      submitted: false,
      reason: 'several_waiting_accounts',
    });
    for (const account of [first, second]) {
      expect((await nextEvent(t, 'sms_relay_refused', account.id)).data).toMatchObject({
        reason: 'several_waiting_accounts',
      });
      expect((await api.get(`/v1/accounts/${account.id}/otp`)).body.assistance_request.code_in_flight).toBe(false);
    }
    const [audit] = await t.server.store.db
      .selectFrom('audit_log')
      .selectAll()
      .where('action', '=', 'relay.sms')
      .execute();
    expect(audit).toMatchObject({ account_id: null, outcome: 'several_waiting_accounts' });
    expect(JSON.parse(audit!.details!).account_ids.sort()).toEqual([first.id, second.id].sort());

    // Once only one waits on the number, the same SMS goes to it.
    await api.post(`/v1/sessions/${secondSession}/cancel`);
    expect((await sessionEnd(api, secondSession)).state).toBe('cancelled');
    const taken = await api.post('/v1/relay/sms', { to: sms.to, from: sms.from, body: sms.body });
    expect(taken.body).toMatchObject({ matched: true, submitted: true, reason: null });
    expect((await sessionEnd(api, firstSession)).state).toBe('succeeded');
  });

  it('routes only to the expected sender and with the account pattern, and says why it did not', async () => {
    t = await startTestServer();
    const { api } = t;
    const picky = await accountWithPhone(api, 'otp', {
      sms_sender: 'sandboxbank',
      sms_code_pattern: 'login code is (\\d{6})',
    });
    const sessionId = await scrape(api, picky.id);
    const request = await pendingRequest(api, picky.id);
    const sms = await latestSms(api, picky.username);
    const relay = (body: Record<string, unknown>) => api.post('/v1/relay/sms', body);

    expect((await relay({ to: '0611134209', from: sms.from, body: sms.body })).body.reason).toBe('invalid_number');
    expect((await relay({ to: '+14155550100', from: sms.from, body: sms.body })).body.reason).toBe('no_account');
    expect((await relay({ to: sms.to, from: 'Mallory', body: sms.body })).body.reason).toBe('sender_mismatch');
    // The pattern wins over the generic reading: another 6-digit number in the text does not matter.
    const decoy = await relay({ to: sms.to, from: sms.from, body: `Ref 777777. Your code is ${sms.code}.` });
    expect(decoy.body).toEqual({ matched: true, request_id: request.id, submitted: false, reason: 'no_code' });
    // The number in any notation, the sender's name in any case.
    const spaced = `${sms.to.slice(0, 3)} ${sms.to.slice(3, 4)} ${sms.to.slice(4)}`;
    const taken = await relay({ to: spaced, from: 'SANDBOXBANK', body: `Ref 777777. ${sms.body}` });
    expect(taken.body).toEqual({ matched: true, request_id: request.id, submitted: true, reason: null });
    expect((await sessionEnd(api, sessionId)).state).toBe('succeeded');

    const invalid = await api.put(`/v1/accounts/${picky.id}/config`, { sms_code_pattern: '(unclosed' });
    expect(invalid.status).toBe(400);
    expect(invalid.body.error.details).toEqual([{ path: '/sms_code_pattern', message: expect.any(String) }]);
    expect((await api.put(`/v1/accounts/${picky.id}/config`, { sms_code_pattern: '\\d*' })).status).toBe(400);
  });
});

describe('SMS before the request', () => {
  it('holds an SMS that arrives before the login asks, and uses it when the request opens', async () => {
    const gated = gatedConnectors();
    t = await startTestServer({ connectors: gated.connectors });
    const { api } = t;
    const account = await accountWithPhone(api);
    gated.gate(account.username);
    const sessionId = await scrape(api, account.id);
    // The bank has sent its SMS; the login has not reached its prompt yet.
    const sms = await latestSms(api, account.username);
    const held = await api.post('/v1/relay/sms', { to: sms.to, from: sms.from, body: sms.body });
    expect(held.body).toEqual({ matched: false, request_id: null, submitted: false, reason: 'held' });
    const [row] = await t.server.store.db.selectFrom('held_sms').selectAll().execute();
    expect(row!.message_enc).not.toContain(sms.code);

    gated.open(account.username);
    expect((await sessionEnd(api, sessionId)).state).toBe('succeeded');
    const [done] = (await api.get(`/v1/assistance-requests?account_id=${account.id}`)).body.data;
    expect(done.resolution).toEqual({ via: 'sms_relay', reason: 'accepted' });
    const audit = await auditOf(t.server.store.db, account.id, 'relay.sms');
    expect(audit.map((a) => [a.outcome, JSON.parse(a.details!).held])).toEqual([
      ['held', false],
      ['submitted', true],
    ]);
    expect(await t.server.store.db.selectFrom('held_sms').selectAll().execute()).toEqual([]);
  });

  it('discards a held SMS once its window has passed, and never holds an old one', async () => {
    const gated = gatedConnectors();
    let offset = 0;
    t = await startTestServer({
      connectors: gated.connectors,
      clock: () => Date.now() + offset,
      // The clock jumps 31 s below; a lease that outlasts the jump keeps the waiting login alive
      // (with the default, the jump alone would declare it lost and its request would refuse codes).
      env: { OTPILOT_SMS_HOLD_SECONDS: '30', OTPILOT_LEASE_MS: '120000' },
    });
    const { api } = t;
    const account = await accountWithPhone(api);
    gated.gate(account.username);
    const sessionId = await scrape(api, account.id);
    const sms = await latestSms(api, account.username);
    const old = new Date(Date.now() - 31_000).toISOString();
    const stale = await api.post('/v1/relay/sms', { to: sms.to, from: sms.from, body: sms.body, received_at: old });
    expect(stale.body.reason).toBe('too_old');
    expect((await api.post('/v1/relay/sms', { to: sms.to, from: sms.from, body: sms.body })).body.reason).toBe('held');

    offset += 31_000;
    gated.open(account.username);
    const request = await pendingRequest(api, account.id);
    // The request's opening clears out expired messages instead of using them.
    await eventually(
      () => t!.server.store.db.selectFrom('held_sms').selectAll().execute(),
      (rows) => rows.length === 0,
    );
    expect((await api.get(`/v1/accounts/${account.id}/otp`)).body.assistance_request).toMatchObject({
      id: request.id,
      attempts: 0,
      code_in_flight: false,
    });
    // The login still waits for its code: it was not used, and a person can still give it.
    const given = await api.post(`/v1/accounts/${account.id}/otp?wait=true`, { code: sms.code });
    expect(given.body.outcome).toBe('accepted');
    expect((await sessionEnd(api, sessionId)).state).toBe('succeeded');
    const audit = await auditOf(t.server.store.db, account.id, 'relay.sms');
    expect(audit.map((a) => a.outcome).sort()).toEqual(['held', 'too_old']);
  });
});

describe('relays', () => {
  it('are managed with relay:write; the auth token is write-only', async () => {
    t = await startTestServer();
    const { api } = t;
    const twilioRelay = await createRelay(api, { provider: 'twilio', auth_token: TOKEN });
    const jsonRelay = await createRelay(api, { provider: 'json' });
    expect(jsonRelay.url).toBe(`${t.url}/v1/relay/sms`);
    const listed = await api.get('/v1/relays');
    expect(listed.body.data.map((r: any) => r.id).sort()).toEqual([twilioRelay.id, jsonRelay.id].sort());
    expect(JSON.stringify(listed.body)).not.toContain(TOKEN);
    const stored = await t.server.store.db.selectFrom('relays').selectAll().execute();
    expect(JSON.stringify(stored)).not.toContain(TOKEN);

    expect((await api.post('/v1/relays', { provider: 'twilio' })).body.error.details).toEqual([
      { path: '/auth_token', message: expect.any(String) },
    ]);
    expect((await api.post('/v1/relays', { provider: 'json', auth_token: 'x' })).status).toBe(400);
    expect((await api.post('/v1/relays', { provider: 'sms-gateway' })).status).toBe(400);

    const statusOnly = await keyWith(t, 'status:read');
    expect((await api.get('/v1/relays', statusOnly)).status).toBe(403);
    expect(
      (await api.post('/v1/relay/sms', { to: '+31611111111', from: 'x', body: 'code 123456' }, statusOnly)).status,
    ).toBe(403);

    expect((await api.delete(`/v1/relays/${twilioRelay.id}`)).status).toBe(204);
    expect((await api.delete(`/v1/relays/${twilioRelay.id}`)).status).toBe(404);
    const params = twilioParams({ to: '+31611111111', from: 'x', body: 'code 123456' });
    const gone = await postTwilio(
      twilioRelay.url,
      params,
      twilio.getExpectedTwilioSignature(TOKEN, twilioRelay.url, params),
    );
    expect(gone.status).toBe(404);
    const audit = await t.server.store.db
      .selectFrom('audit_log')
      .select(['action', 'target_id'])
      .where('action', 'in', ['relay.create', 'relay.delete'])
      .orderBy('id')
      .execute();
    expect(audit).toEqual([
      { action: 'relay.create', target_id: twilioRelay.id },
      { action: 'relay.create', target_id: jsonRelay.id },
      { action: 'relay.delete', target_id: twilioRelay.id },
    ]);
  });

  it('stores otp_phone in E.164 whatever notation it was given', async () => {
    t = await startTestServer();
    const account = await createSandboxAccount(t.api, 'alice', { otp_phone: '0031 6 1234 5678' });
    expect((await t.api.get(`/v1/accounts/${account.id}/config`)).body.otp_phone).toBe('+31612345678');
    const status = await statusUntil(t.api, account.id, () => true);
    expect(status.trust_expires_at).toBeNull();
  });
});
