// An otpilot connector in plain JavaScript, for the example bank (bank.js). It imports nothing: the SDK's
// shapes are plain objects, and a failure is any thrown object with a `kind` (docs/connectors.md).
//
// Load it into otpilot:
//   OTPILOT_CONNECTORS=./examples/connector/index.js EXAMPLE_BANK_URL=http://127.0.0.1:4020/ otpilot start
//
// Test it without otpilot running: node --test examples/connector/connector.test.js

/** Where the bank is: read at each login, so the setting can change without a new connector. */
const bankUrl = () => process.env.EXAMPLE_BANK_URL || 'http://127.0.0.1:4020/';

/** A typed failure by shape: `kind` is one of the five connector error kinds. */
function failure(kind, message) {
  return Object.assign(new Error(message), { kind });
}

/** One JSON call to the bank; an unreachable bank is `bank_unavailable`, a cancelled login rethrows as is. */
async function call(ctx, method, path, { body, token } = {}) {
  let res;
  try {
    res = await fetch(new URL(path, bankUrl()), {
      method,
      headers: {
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: ctx.signal,
    });
  } catch (err) {
    if (ctx.signal.aborted) throw err; // the engine stopped the login: let its error pass
    throw failure('bank_unavailable', 'the example bank could not be reached');
  }
  const text = await res.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    throw failure('connector_broken', `the example bank answered ${res.status} with something that is not JSON`);
  }
  return { status: res.status, body: json };
}

/** The open bank session the engine reads (and, for persistent accounts, keeps alive). */
function bankSession(ctx, token) {
  const get = async (path) => {
    const answer = await call(ctx, 'GET', path, { token });
    if (answer.status === 401) throw failure('bank_unavailable', 'the example bank ended the session');
    if (answer.status !== 200) throw failure('connector_broken', `the example bank answered ${answer.status}`);
    return answer.body;
  };
  return {
    async bankAccounts() {
      const list = await get('accounts');
      return list.map((a) => ({ id: a.id, name: a.name, iban: a.iban, number: null, currency: a.currency, type: 'current' }));
    },
    async balances() {
      const list = await get('accounts');
      const as_of = new Date().toISOString();
      return list.map((a) => ({ bank_account_id: a.id, current: a.balance, available: null, currency: a.currency, as_of }));
    },
    async identity() {
      const me = await get('me');
      return { name: me.full_name, email: me.email, phone: null };
    },
    async movements(range) {
      const ledgers = await get('accounts');
      const query = `from=${range.from}&to=${range.to}`;
      const lists = await Promise.all(
        ledgers.map(async (l) =>
          (await get(`accounts/${encodeURIComponent(l.id)}/transactions?${query}`)).map((t) => ({
            id: t.id,
            bank_account_id: l.id,
            booked_at: t.date,
            amount: t.amount,
            currency: l.currency,
            name: t.counterparty,
            reference: t.memo,
          })),
        ),
      );
      return lists.flat();
    },
    async keepAlive() {
      const answer = await call(ctx, 'GET', 'ping', { token });
      return answer.status === 200;
    },
    async close() {
      await call(ctx, 'POST', 'logout', { token });
    },
  };
}

export default {
  id: 'example',
  name: 'Example Bank',
  version: '0.1.0',
  credential_fields: [
    { name: 'username', label: 'Username', type: 'text', required: true },
    { name: 'password', label: 'Password', type: 'password', required: true },
  ],
  // The bank dislikes bursts: two logins at once at most, across every otpilot worker.
  limits: { max_concurrent_logins: 2 },

  async login(ctx) {
    const { username, password } = ctx.credentials;
    ctx.stage('login');
    const device = await ctx.trust.get();
    const answer = await call(ctx, 'POST', 'login', {
      body: { username, password, ...(device ? { device_token: device } : {}) },
    });
    if (answer.status === 401) throw failure('invalid_credentials', 'the bank refused the username or password');
    if (answer.status === 423) throw failure('account_locked', 'the bank says the login is locked');
    if (answer.status === 200) {
      ctx.stage('logged_in');
      return bankSession(ctx, answer.body.token);
    }
    if (answer.status !== 202) throw failure('connector_broken', `the login answered ${answer.status}`);

    // The bank texted a code: pause until someone (or a relayed SMS) gives it, and judge each one.
    ctx.stage('code');
    const { challenge } = answer.body;
    const token = await ctx.requestCode(
      {
        length: answer.body.length,
        type: 'numeric',
        purpose: 'login',
        prompt: answer.body.prompt,
        channel: 'sms',
        // Never use the bank's last attempt: it locks the login.
        max_attempts: Math.max(1, answer.body.attempts_left - 1),
      },
      async (code) => {
        const verdict = await call(ctx, 'POST', `challenges/${challenge}/answer`, { body: { code } });
        if (verdict.status === 422) return { outcome: 'rejected' };
        if (verdict.status === 410) throw failure('code_rejected', 'the bank closed the code challenge');
        if (verdict.status === 423) throw failure('account_locked', 'the bank locked the login');
        if (verdict.status !== 200) throw failure('connector_broken', `the code answer was ${verdict.status}`);
        // Remember this device: the next login skips the code until the bank forgets it.
        await ctx.trust.set(verdict.body.device_token, { expires_at: new Date(verdict.body.device_expires_at) });
        return { outcome: 'accepted', value: verdict.body.token };
      },
    );
    ctx.log.info('example bank login accepted the code');
    ctx.stage('logged_in');
    return bankSession(ctx, token);
  },
};
