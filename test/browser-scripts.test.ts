import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeRedactor } from '../src/browser/redact.js';
import { makeRunRecorder } from '../src/browser/runs.js';
import { makeTrustStore } from '../src/engine/trust.js';
import { eventually, latestCode, pendingRequest, scrape, sessionEnd, statusUntil } from './helpers/flows.js';
import { otpilot, processEnv } from './helpers/process.js';
import { dashboardToken, instanceAdminKey, startTestServer, type TestServer } from './helpers/server.js';

/**
 * Browser-script connectors end to end: logins through the public API, run by the sandbox website's
 * bank script in real Chromium (one Chromium for the whole file: the runtime shares it across logins).
 */

let t: TestServer;
let adminKey: string;
const PASSWORD = 'pw-Very-Secret-4711';
let counter = 0;

beforeAll(async () => {
  t = await startTestServer({ sandboxBank: { webSlowMs: 100 } });
  adminKey = await instanceAdminKey(t);
});
afterAll(async () => {
  await t?.close();
});

/** An account of the sandbox website for a fresh bank user behaving like `username`. */
async function webAccount(
  username: string,
  password = PASSWORD,
  config: Record<string, unknown> = {},
): Promise<{ id: string; username: string }> {
  const unique = `${username}+web${process.pid}x${++counter}`;
  const reply = await t.api.post('/v1/accounts', {
    bank_id: 'sandbox-web',
    name: `Web ${unique}`,
    credentials: { username: unique, password },
    config,
  });
  expect(reply.status, JSON.stringify(reply.body)).toBe(201);
  return { id: reply.body.id, username: unique };
}

/** A browser login's run: the script version and, after a failure, its evidence. */
async function runOf(sessionId: string) {
  const reply = await t.api.get(`/v1/sessions/${sessionId}/browser`);
  expect(reply.status, JSON.stringify(reply.body)).toBe(200);
  return reply.body;
}

describe('a browser login through the API', () => {
  it('pauses for the SMS code, takes a wrong code then the right one from the External API, and stores the data', async () => {
    const account = await webAccount('otp');
    const sessionId = await scrape(t.api, account.id);
    const request = await pendingRequest(t.api, account.id);
    expect(request).toMatchObject({ max_attempts: 2, descriptor: { length: 6, type: 'numeric', purpose: 'login' } });
    expect(request.descriptor.prompt).toMatch(/^Enter the code we sent to •••• \d{4}$/);

    const code = await latestCode(t.api, account.username);
    const wrong = code === '000000' ? '111111' : '000000';
    const rejected = await t.api.post(`/v1/accounts/${account.id}/otp?wait=true`, {
      code: wrong,
      request_id: request.id,
    });
    expect(rejected.body).toMatchObject({ outcome: 'rejected' });
    await pendingRequest(t.api, account.id);
    const accepted = await t.api.post(`/v1/accounts/${account.id}/otp?wait=true`, { code, request_id: request.id });
    expect(accepted.body).toMatchObject({ outcome: 'accepted' });

    const session = await sessionEnd(t.api, sessionId, 60_000);
    expect(session.state, JSON.stringify(session)).toBe('succeeded');
    // Two ledgers of 90 days, three movements a day each, read over several pages of the table.
    expect(session.movements_new).toBeGreaterThan(400);
    expect(session.stages.map((s: { name: string }) => s.name)).toEqual(
      expect.arrayContaining(['script 1.0.0', 'code', 'awaiting_assistance', 'logged_in', 'movements', 'succeeded']),
    );
    const run = await runOf(sessionId);
    expect(run).toMatchObject({ bank_id: 'sandbox-web', script_version: '1.0.0', failed_at: null, html: null });
    const movements = await t.api.get(`/v1/accounts/${account.id}/movements?limit=5`);
    expect(movements.status).toBe(200);
    expect(movements.body.data[0]).toMatchObject({ currency: 'EUR' });
  });
});

describe('a browser login answered from the dashboard', () => {
  it('takes the code a signed-in operator types into the dashboard prompt (the dashboard API)', async () => {
    const token = await dashboardToken(t);
    const account = await webAccount('otp');
    const sessionId = await scrape(t.api, account.id);
    const request = await pendingRequest(t.api, account.id);
    const code = await latestCode(t.api, account.username);
    const submitted = await fetch(`${t.url}/accounts/${account.id}/otp?wait=true`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ code, request_id: request.id }),
    });
    expect(submitted.status).toBe(200);
    expect(await submitted.json()).toMatchObject({ outcome: 'accepted' });
    const session = await sessionEnd(t.api, sessionId, 60_000);
    expect(session.state, JSON.stringify(session)).toBe('succeeded');
    const list = (await t.api.get(`/v1/assistance-requests?account_id=${account.id}`)).body.data;
    expect(list.find((r: { id: string }) => r.id === request.id)).toMatchObject({
      state: 'fulfilled',
      resolution: { via: 'dashboard' },
    });
  });
});

describe('trust and the bank’s answers', () => {
  it('keeps the browser’s cookies as the account’s trust: the next login needs no code', async () => {
    const account = await webAccount('trust');
    const first = await scrape(t.api, account.id);
    const request = await pendingRequest(t.api, account.id);
    const code = await latestCode(t.api, account.username);
    await t.api.post(`/v1/accounts/${account.id}/otp?wait=true`, { code, request_id: request.id });
    expect((await sessionEnd(t.api, first, 60_000)).state).toBe('succeeded');
    // The device cookie's end (30 days) is the trust's end, not the consent cookie's (a year).
    const read = await t.api.get(`/v1/accounts/${account.id}`);
    expect(Date.parse(read.body.trust_expires_at)).toBeGreaterThan(Date.now() + 29 * 86_400_000);
    expect(Date.parse(read.body.trust_expires_at)).toBeLessThan(Date.now() + 31 * 86_400_000);

    const second = await scrape(t.api, account.id);
    const session = await sessionEnd(t.api, second, 60_000);
    expect(session.state, JSON.stringify(session)).toBe('succeeded');
    expect(session.stages.map((s: { name: string }) => s.name)).not.toContain('awaiting_assistance');
    const requests = await t.server.store.db
      .selectFrom('assistance_requests')
      .select('id')
      .where('account_id', '=', account.id)
      .execute();
    expect(requests).toHaveLength(1);
  });

  it('holds a decoupled approval until the phone approves it', async () => {
    const account = await webAccount('approve');
    const sessionId = await scrape(t.api, account.id);
    const status = await statusUntil(t.api, account.id, (s) => s.pending_assistance?.type === 'approval');
    expect(status.pending_assistance.type).toBe('approval');
    const approved = await t.api.post(`/sandbox-bank/phone/${encodeURIComponent(account.username)}/approve`, {}, null);
    expect(approved.status).toBe(200);
    const session = await sessionEnd(t.api, sessionId, 60_000);
    expect(session.state, JSON.stringify(session)).toBe('succeeded');
  });

  it('closes the browser when a session waiting for its code is cancelled', async () => {
    const account = await webAccount('otp');
    const sessionId = await scrape(t.api, account.id);
    await pendingRequest(t.api, account.id);
    expect(t.server.browser.pool.active()).toBeGreaterThan(0);
    expect((await t.api.post(`/v1/sessions/${sessionId}/cancel`)).status).toBe(202);
    expect((await sessionEnd(t.api, sessionId, 60_000)).state).toBe('cancelled');
    await eventually(
      async () => t.server.browser.pool.active(),
      (active) => active === 0,
      30_000,
    );
  });

  it('reads the same movements from the compact layout (its flag saved in the account’s cookies)', async () => {
    const account = await webAccount('alice');
    const cookie = { domain: '127.0.0.1', path: '/sandbox-bank/web', expires: -1, httpOnly: true, secure: false };
    const trust = makeTrustStore({
      db: t.server.store.db,
      transact: t.server.transact,
      cipher: t.server.cipher,
      accountId: account.id,
    });
    await trust.set(
      JSON.stringify({ cookies: [{ name: 'sbw_layout', value: 'compact', sameSite: 'Lax', ...cookie }], origins: [] }),
    );
    const session = await sessionEnd(t.api, await scrape(t.api, account.id), 60_000);
    expect(session.state, JSON.stringify(session)).toBe('succeeded');
    expect(session.movements_new).toBeGreaterThan(400);
    // Cookies are kept, but without a trusted-device cookie there is no trust to expire.
    expect((await t.api.get(`/v1/accounts/${account.id}`)).body.trust_expires_at).toBeNull();
    // The browser ran with the flag and kept it, beside the website's own cookies.
    const saved = JSON.parse((await trust.get()) ?? '{}') as { cookies: { name: string; value: string }[] };
    expect(saved.cookies).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ name: 'sbw_layout', value: 'compact' }),
        expect.objectContaining({ name: 'sbw_consent', value: 'yes' }),
      ]),
    );
  });

  it.each([
    ['locked', 'account_locked', PASSWORD],
    ['alice', 'invalid_credentials', 'wrong'],
    ['flaky', 'bank_unavailable', PASSWORD],
  ])('ends a %s login with the bank’s failure (%s)', async (user, category, password) => {
    const account = await webAccount(user, password);
    const sessionId = await scrape(t.api, account.id);
    const session = await sessionEnd(t.api, sessionId, 60_000);
    expect(session).toMatchObject({ state: 'failed', failure_category: category });
    const run = await runOf(sessionId);
    expect(run.failed_at).not.toBeNull();
    expect(JSON.stringify(run)).not.toContain(PASSWORD);
  });
});

/** The reference script with another version and, optionally, its login replaced. */
async function scriptVersion(version: string, loginBody?: string): Promise<string> {
  const active = await t.api.get('/v1/banks/sandbox-web/scripts/1.0.0', adminKey);
  expect(active.status).toBe(200);
  let source: string = active.body.source.replace(
    "export const version = '1.0.0';",
    `export const version = '${version}';`,
  );
  if (loginBody !== undefined)
    source = source.replace(
      'export async function login(page, ctx) {',
      `export async function login(page, ctx) {\n${loginBody}`,
    );
  return source;
}

describe('versioned bank scripts', () => {
  it('lists the reference script as active, refuses malformed pushes and non-administrators', async () => {
    const list = await t.api.get('/v1/banks/sandbox-web/scripts', adminKey);
    expect(list.status).toBe(200);
    expect(list.body.data).toEqual(
      expect.arrayContaining([expect.objectContaining({ version: '1.0.0', state: 'active' })]),
    );
    expect(list.body.data[0].source).toBeUndefined();
    expect((await t.api.get('/v1/banks/sandbox-web/scripts')).status).toBe(403);
    expect((await t.api.get('/v1/banks/nope/scripts', adminKey)).status).toBe(404);

    const push = (source: string) => t.api.post('/v1/banks/sandbox-web/scripts', { source }, adminKey);
    const syntax = await push('export const bank = ;');
    expect(syntax.status).toBe(400);
    expect(syntax.body.error.message).toMatch(/does not load/);
    const otherBank = await push((await scriptVersion('9.0.0')).replace("'sandbox-web'", "'sandbox'"));
    expect(otherBank.status).toBe(400);
    const badVersion = await push(await scriptVersion('one'));
    expect(badVersion.status).toBe(400);
    const again = await push(await scriptVersion('1.0.0'));
    expect(again.status).toBe(409);
    const deprecateActive = await t.api.post('/v1/banks/sandbox-web/scripts/1.0.0/deprecate', {}, adminKey);
    expect(deprecateActive.status).toBe(409);
  });

  it('runs a pinned draft for one account, keeps its failure evidence, then promotes a fixed version', async () => {
    // 1.1.0 types the credentials, then breaks: the evidence must show the page without them.
    const broken = await scriptVersion(
      '1.1.0',
      `  await page.goto(new URL('login', ctx.baseUrl).toString());
  await page.getByLabel('Username').fill(ctx.credentials.username);
  await page.getByLabel('Password').fill(ctx.credentials.password);
  console.log(ctx.credentials.password);
  await page.locator('#no-such-button').click({ timeout: 500 });`,
    );
    const pushed = await t.api.post('/v1/banks/sandbox-web/scripts', { source: broken }, adminKey);
    expect(pushed.status, JSON.stringify(pushed.body)).toBe(201);
    expect(pushed.body).toMatchObject({ version: '1.1.0', state: 'draft' });

    const tried = await webAccount('alice');
    const other = await webAccount('alice');
    const pin = await t.api.put(`/v1/banks/sandbox-web/scripts/pins/${tried.id}`, { version: '1.1.0' }, adminKey);
    expect(pin.body).toEqual({ account_id: tried.id, version: '1.1.0' });

    const failedId = await scrape(t.api, tried.id);
    const failed = await sessionEnd(t.api, failedId, 60_000);
    expect(failed).toMatchObject({ state: 'failed', failure_category: 'connector_broken' });
    const run = await runOf(failedId);
    expect(run).toMatchObject({ script_version: '1.1.0', url: expect.stringContaining('/sandbox-bank/web/login') });
    expect(run.error).toMatch(/no-such-button/);
    expect(run.html).toContain('id="password"');
    expect(run.stages.map((s: { name: string }) => s.name)).toContain('failed');
    const evidence = JSON.stringify(run);
    expect(evidence).not.toContain(PASSWORD);
    expect(evidence).not.toContain(tried.username);
    const shot = await t.api.get(`/v1/sessions/${failedId}/browser/screenshot`);
    expect(shot.status).toBe(200);
    expect(shot.headers.get('content-type')).toBe('image/png');

    // The account that is not pinned still runs the active version.
    const fine = await sessionEnd(t.api, await scrape(t.api, other.id), 60_000);
    expect(fine.state).toBe('succeeded');
    expect((await runOf(fine.id)).script_version).toBe('1.0.0');

    // A fixed 1.2.0 goes through review and becomes the active one; 1.0.0 is deprecated, 1.1.0 retired.
    const fixed = await t.api.post('/v1/banks/sandbox-web/scripts', { source: await scriptVersion('1.2.0') }, adminKey);
    expect(fixed.status).toBe(201);
    expect((await t.api.post('/v1/banks/sandbox-web/scripts/1.2.0/promote', {}, adminKey)).status).toBe(409);
    expect((await t.api.post('/v1/banks/sandbox-web/scripts/1.2.0/review', {}, adminKey)).body.state).toBe('review');
    expect((await t.api.post('/v1/banks/sandbox-web/scripts/1.2.0/promote', {}, adminKey)).body.state).toBe('active');
    expect((await t.api.post('/v1/banks/sandbox-web/scripts/1.1.0/deprecate', {}, adminKey)).body.state).toBe(
      'deprecated',
    );
    const versions = await t.api.get('/v1/banks/sandbox-web/scripts', adminKey);
    expect(
      Object.fromEntries(versions.body.data.map((s: { version: string; state: string }) => [s.version, s.state])),
    ).toEqual({
      '1.2.0': 'active',
      '1.1.0': 'deprecated',
      '1.0.0': 'deprecated',
    });
    const bank = (await t.api.get('/v1/banks')).body.data.find((b: { id: string }) => b.id === 'sandbox-web');
    expect(bank.script_version).toBe('1.2.0');

    // The pin to a retired version no longer applies: the account runs the active one again.
    const after = await sessionEnd(t.api, await scrape(t.api, tried.id), 60_000);
    expect(after.state, JSON.stringify(after)).toBe('succeeded');
    expect((await runOf(after.id)).script_version).toBe('1.2.0');
  });
});

describe('limits', () => {
  it.each([
    [
      '1.4.0',
      'opens more pages than allowed',
      '  for (let i = 0; i < 6; i++) await page.context().newPage();',
      /more pages than allowed/,
    ],
    [
      '1.5.0',
      'outgrows its heap',
      '  const hoard = []; for (;;) hoard.push(new Array(1_000_000).fill(hoard.length));',
      /script worker stopped|memory/,
    ],
  ])('fails a login whose script (%s) %s, and frees its browser', async (version, _what, loginBody, message) => {
    const pushed = await t.api.post(
      '/v1/banks/sandbox-web/scripts',
      { source: await scriptVersion(version, loginBody) },
      adminKey,
    );
    expect(pushed.status, JSON.stringify(pushed.body)).toBe(201);
    const account = await webAccount('alice');
    await t.api.put(`/v1/banks/sandbox-web/scripts/pins/${account.id}`, { version }, adminKey);
    const session = await sessionEnd(t.api, await scrape(t.api, account.id), 60_000);
    expect(session).toMatchObject({ state: 'failed', failure_category: 'connector_broken' });
    expect(session.failure_message).toMatch(message);
    await eventually(
      async () => t.server.browser.pool.active(),
      (active) => active === 0,
      30_000,
    );
  });
});

describe('evidence retention', () => {
  it('clears evidence older than OTPILOT_BROWSER_EVIDENCE_DAYS when later failures are recorded, keeping the run', async () => {
    const clock = { t: Date.now() - 20 * 86_400_000 };
    const runs = makeRunRecorder({ db: t.server.store.db, clock: () => clock.t, retentionDays: 14 });
    const account = await webAccount('alice');
    const ref = (n: number) => ({
      sessionId: `ses_retention${process.pid}x${n}`,
      orgId: t.orgId,
      accountId: account.id,
    });
    const evidence = { url: 'http://bank/login', html: '<p>old</p>', screenshot: 'iVBORw0KGgo=', console_errors: [] };
    await runs.started(ref(1), 'sandbox-web', '1.0.0');
    await runs.failed(ref(1), 'broken', evidence, makeRedactor());
    clock.t += 15 * 86_400_000;
    await runs.started(ref(2), 'sandbox-web', '1.0.0');
    await runs.failed(ref(2), 'broken again', evidence, makeRedactor());
    const rows = await t.server.store.db
      .selectFrom('browser_runs')
      .select(['session_id', 'script_version', 'html', 'screenshot', 'url'])
      .where('session_id', 'in', [ref(1).sessionId, ref(2).sessionId])
      .orderBy('session_id')
      .execute();
    expect(rows).toEqual([
      { session_id: ref(1).sessionId, script_version: '1.0.0', html: null, screenshot: null, url: null },
      {
        session_id: ref(2).sessionId,
        script_version: '1.0.0',
        html: '<p>old</p>',
        screenshot: 'iVBORw0KGgo=',
        url: 'http://bank/login',
      },
    ]);
  });
});

describe('otpilot scripts', () => {
  it('pushes a script file as a draft and moves it from the command line', async () => {
    const file = join(t.dataDir, 'next.js');
    writeFileSync(file, await scriptVersion('2.0.0'));
    const env = await processEnv(t.dataDir);
    const pushed = await otpilot(['scripts', 'push', file, '--json'], env);
    expect(pushed.code, pushed.stderr).toBe(0);
    expect(JSON.parse(pushed.stdout)).toMatchObject({ bank_id: 'sandbox-web', version: '2.0.0', state: 'draft' });
    const early = await otpilot(['scripts', 'promote', 'sandbox-web', '2.0.0'], env);
    expect(early.code).toBe(2);
    expect(early.stderr).toMatch(/a draft script cannot be promoted/);
    expect((await otpilot(['scripts', 'review', 'sandbox-web', '2.0.0'], env)).code).toBe(0);
    const listed = await otpilot(['scripts', 'list', 'sandbox-web'], env);
    expect(listed.stdout).toMatch(/^sandbox-web {2}2\.0\.0 {2}review/m);
  });

  it('tries a script file once on one account and restores the account’s pin', async () => {
    const file = join(t.dataDir, 'try.js');
    writeFileSync(file, await scriptVersion('2.1.0', "  ctx.fail('bank_unavailable', 'tried and stopped');"));
    const account = await webAccount('alice');
    const tried = await otpilot(
      ['scripts', 'try', file, '--account', account.id, '--json'],
      await processEnv(t.dataDir),
    );
    expect(tried.code, tried.stderr).toBe(1);
    const outcome = JSON.parse(tried.stdout);
    expect(outcome).toMatchObject({
      script_version: '2.1.0',
      state: 'failed',
      failure_category: 'bank_unavailable',
      failure_message: 'tried and stopped',
    });
    expect((await runOf(outcome.session_id)).script_version).toBe('2.1.0');
    // The draft stays for review; the account follows the active version again.
    const draft = await t.api.get('/v1/banks/sandbox-web/scripts/2.1.0', adminKey);
    expect(draft.body).toMatchObject({ state: 'draft', pinned_accounts: [] });
  });
});

// Last in the file: the kept session holds its browser until the server closes.
describe('a persistent browser session', () => {
  it('keeps the logged-in browser between scrapes: the next scrape reads without logging in', async () => {
    const account = await webAccount('otp', PASSWORD, { session_type: 'persistent' });
    const first = await scrape(t.api, account.id);
    const request = await pendingRequest(t.api, account.id);
    await t.api.post(`/v1/accounts/${account.id}/otp?wait=true`, {
      code: await latestCode(t.api, account.username),
      request_id: request.id,
    });
    expect((await sessionEnd(t.api, first, 60_000)).state).toBe('succeeded');
    expect((await t.api.get(`/v1/accounts/${account.id}`)).body.live_session_since).not.toBeNull();

    const second = await sessionEnd(t.api, await scrape(t.api, account.id), 60_000);
    expect(second.state, JSON.stringify(second)).toBe('succeeded');
    const stages = second.stages.map((s: { name: string }) => s.name);
    expect(stages).toContain('reuse_session');
    expect(stages).not.toContain('login_page');
    expect(stages).not.toContain('awaiting_assistance');
  });
});
