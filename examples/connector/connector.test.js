// The example connector's own tests: the SDK's test kit plays the engine and the person, bank.js plays
// the bank. No otpilot server, no database. Run: node --test examples/connector/connector.test.js
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { isEngineStop } from 'otpilot/sdk';
import { makeFakeTrustStore, makeTestContext, runLogin } from 'otpilot/sdk/testing';
import { startBank } from './bank.js';
import connector from './index.js';

let bank;
before(async () => {
  bank = await startBank();
  process.env.EXAMPLE_BANK_URL = bank.url;
});
after(() => bank.close());

/** The person reads the code the bank texted to `user`. */
const phone = (user) => () => bank.codeFor(user);

test('logs in with the texted code and reads the data', async () => {
  const run = await runLogin(connector, {
    credentials: { username: 'ada', password: 'pw' },
    codes: [phone('ada')],
    range: { from: '2024-03-01', to: '2024-03-03' },
  });
  assert.deepEqual(run.code_requests.map((r) => [r.length, r.type, r.channel, r.max_attempts]), [[6, 'numeric', 'sms', 2]]);
  assert.deepEqual(run.verdicts, [{ outcome: 'accepted', value: run.verdicts[0].value }]);
  assert.deepEqual(run.data.problems, []);
  assert.equal(run.data.accounts.length, 2);
  assert.equal(run.data.movements.length, 2 * 3);
  assert.deepEqual(run.leaks(), []); // no password or code in the logs
});

test('a wrong code is rejected and the next one accepted; a code that cannot fit never reaches the bank', async () => {
  const kit = makeTestContext({ credentials: { username: 'bob', password: 'pw' }, codes: ['12-34', '000000', phone('bob')] });
  await connector.login(kit.ctx);
  assert.equal(kit.refused.length, 1);
  // 000000 may be the real code once in a million runs; then it is the accepted one.
  assert.equal(kit.verdicts.at(-1).outcome, 'accepted');
});

test('a remembered device skips the code until the bank forgets it', async () => {
  const trust = makeFakeTrustStore();
  await connector.login(makeTestContext({ credentials: { username: 'cy', password: 'pw' }, codes: [phone('cy')], trust }).ctx);
  assert.ok(trust.value);
  assert.ok(trust.expires_at > new Date());
  const again = makeTestContext({ credentials: { username: 'cy', password: 'pw' }, trust });
  await connector.login(again.ctx);
  assert.equal(again.code_requests.length, 0);
});

test('bank answers become typed errors; the engine giving up stays the engine', async () => {
  const wrong = makeTestContext({ credentials: { username: 'dee', password: 'wrong' } });
  await assert.rejects(connector.login(wrong.ctx), { kind: 'invalid_credentials' });
  const locked = makeTestContext({ credentials: { username: 'locked', password: 'pw' } });
  await assert.rejects(connector.login(locked.ctx), { kind: 'account_locked' });
  // Nobody gives a code: the request expires; the connector lets the engine's stop pass.
  const nobody = makeTestContext({ credentials: { username: 'eve', password: 'pw' }, codes: [] });
  await assert.rejects(connector.login(nobody.ctx), (err) => isEngineStop(err));
});
