import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSandboxAccount, latestCode, scrape, sessionEnd, startAssistedLogin } from './helpers/flows.js';
import { startTestServer, type TestServer } from './helpers/server.js';

/** The read-only figures behind the dashboard's pictures, and the movement filters and CSV export. */

let t: TestServer;
beforeAll(async () => {
  t = await startTestServer();
});
afterAll(async () => {
  await t?.close();
});

describe('movement filters and CSV', () => {
  it('filters by text and amount size, pages, and exports the same rows as CSV', async () => {
    const account = await createSandboxAccount(t.api, 'alice');
    expect((await sessionEnd(t.api, await scrape(t.api, account.id))).state).toBe('succeeded');
    // Twenty days: fewer movements than one page of 500 holds.
    const window = `from=${new Date(Date.now() - 20 * 86_400_000).toISOString().slice(0, 10)}`;
    const all = (await t.api.get(`/v1/accounts/${account.id}/movements?limit=500&${window}`)).body.data as any[];
    expect(all.length).toBeGreaterThan(10);
    expect(all.length).toBeLessThan(500);

    const word = all[0].name.split(' ')[0].toUpperCase();
    const byText = (
      await t.api.get(`/v1/accounts/${account.id}/movements?limit=500&${window}&q=${encodeURIComponent(word)}`)
    ).body.data as any[];
    expect(byText.length).toBeGreaterThan(0);
    expect(byText).toEqual(
      all.filter((m) => `${m.name} ${m.reference ?? ''}`.toLowerCase().includes(word.toLowerCase())),
    );

    const sizes = all.map((m) => Math.abs(Number(m.amount))).sort((a, b) => a - b);
    const min = sizes[Math.floor(sizes.length / 4)]!.toFixed(2);
    const max = sizes[Math.floor((sizes.length * 3) / 4)]!.toFixed(2);
    const byAmount = (
      await t.api.get(`/v1/accounts/${account.id}/movements?limit=500&${window}&min_amount=${min}&max_amount=${max}`)
    ).body.data as any[];
    expect(byAmount).toEqual(
      all.filter((m) => Math.abs(Number(m.amount)) >= Number(min) && Math.abs(Number(m.amount)) <= Number(max)),
    );
    // A literal %: matches nothing rather than everything.
    expect((await t.api.get(`/v1/accounts/${account.id}/movements?q=%25`)).body.data).toEqual([]);
    const bad = await t.api.get(`/v1/accounts/${account.id}/movements?min_amount=lots`);
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('VALIDATION_FAILED');

    // Pages of 5 hold the same rows in the same order.
    const paged: any[] = [];
    let cursor = '';
    do {
      const page = await t.api.get(
        `/v1/accounts/${account.id}/movements?limit=5&${window}${cursor ? `&cursor=${cursor}` : ''}`,
      );
      paged.push(...page.body.data);
      cursor = page.body.next_cursor ?? '';
    } while (cursor);
    expect(paged.map((m) => m.id)).toEqual(all.map((m) => m.id));

    const csv = await t.api.raw(
      `/v1/accounts/${account.id}/movements.csv?${window}&min_amount=${min}&max_amount=${max}`,
      {
        headers: { authorization: `Api-Key ${t.key}` },
      },
    );
    expect(csv.status).toBe(200);
    expect(csv.headers.get('content-type')).toMatch(/^text\/csv/);
    expect(csv.headers.get('content-disposition')).toMatch(/^attachment; filename="movements-Test-alice/);
    const lines = (csv.body as string).trimEnd().split('\r\n');
    expect(lines[0]).toBe('booked_at,amount,currency,name,reference,bank_account_id,id');
    expect(lines.slice(1).map((line) => line.split(',').pop())).toEqual(byAmount.map((m) => m.id));
  });
});

describe('insights', () => {
  it('tells balances per day, login health, and who answered each code how fast', async () => {
    const { account, sessionId, request } = await startAssistedLogin(t.api);
    const code = await latestCode(t.api, account.username);
    expect((await t.api.post(`/v1/accounts/${account.id}/otp`, { code, request_id: request.id })).status).toBe(202);
    expect((await sessionEnd(t.api, sessionId)).state).toBe('succeeded');
    const failing = await createSandboxAccount(t.api, 'alice', {}, 'wrong');
    expect((await sessionEnd(t.api, await scrape(t.api, failing.id))).state).toBe('failed');

    const balances = (await t.api.get(`/v1/accounts/${account.id}/insights/balances?days=30`)).body.data as any[];
    expect(balances).toHaveLength(2);
    for (const bank of balances) {
      expect(bank.history).toHaveLength(30);
      // The last day's balance is the one the bank gave.
      expect(Number(bank.history.at(-1).balance)).toBeCloseTo(Number(bank.balance_current), 2);
      // Each day differs from the one before by exactly what was booked on it.
      const movements = (await t.api.get(`/v1/accounts/${account.id}/movements?limit=500&bank_account_id=${bank.id}`))
        .body.data as any[];
      const day = bank.history.at(-2);
      const bookedLastDay = movements
        .filter((m) => m.booked_at.slice(0, 10) === bank.history.at(-1).date)
        .reduce((sum, m) => sum + Number(m.amount), 0);
      expect(Number(bank.history.at(-1).balance) - Number(day.balance)).toBeCloseTo(bookedLastDay, 2);
    }

    const health = (await t.api.get(`/v1/accounts/${account.id}/insights/login-health`)).body;
    expect(health.days).toHaveLength(30);
    expect(health.runs).toEqual([
      expect.objectContaining({ session_id: sessionId, state: 'succeeded', waited_ms: expect.any(Number) }),
    ]);
    expect(health.days.at(-1)).toMatchObject({ succeeded: 1, failed: 0, waited: 1 });
    const failed = (await t.api.get(`/v1/accounts/${failing.id}/insights/login-health?days=7`)).body;
    expect(failed.runs[0]).toMatchObject({ state: 'failed', failure_category: 'invalid_credentials', waited_ms: null });
    const everyone = (await t.api.get('/v1/insights/login-health?days=7')).body.data as any[];
    expect(everyone.find((a) => a.account_id === failing.id).days.at(-1)).toMatchObject({ failed: 1 });
    expect((await t.api.get('/v1/insights/login-health?days=0')).status).toBe(400);

    const codes = (await t.api.get(`/v1/insights/codes?account_id=${account.id}`)).body;
    expect(codes.data).toEqual([
      expect.objectContaining({
        id: request.id,
        source: 'api',
        verdict: 'accepted',
        time_to_code_ms: expect.any(Number),
        answered_by: expect.objectContaining({ type: 'api_key', label: expect.any(String) }),
      }),
    ]);
    expect(codes.medians.by_account).toEqual([
      expect.objectContaining({ key: account.id, count: 1, median_ms: codes.data[0].time_to_code_ms }),
    ]);
    expect(codes.medians.by_operator[0]).toMatchObject({ key: expect.stringMatching(/^api_key:/), count: 1 });
    expect((await t.api.get('/v1/insights/codes?account_id=acc_nope')).status).toBe(404);
  });
});
