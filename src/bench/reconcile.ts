import { ingestMovements } from '../movements/ingest.js';
import { DEFAULT_WINDOW, type IncomingMovement, matchBatch, type OpenPayment } from '../reconcile/match.js';
import type { RunningServer } from '../server.js';
import { makeBenchClient } from './client.js';
import { percentile, round } from './stats.js';

const FIRST = ['Jérôme', 'Anna', 'Lukas', 'Sophie', 'Noor', 'Bram', 'Claire', 'Ines', 'Tom', 'Eva', 'Jan', 'Marie'];
const LAST = ['Dupont', 'Schmidt', 'Weber', 'Bernard', 'Visser', 'Smit', 'Petit', 'Vos', 'Bakker', 'Horn', 'Jansen'];
const DAY_MS = 86_400_000;

/** A deterministic pseudo-random sequence (mulberry32), so every run measures the same data. */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/**
 * `payments` expected payments and `movements` incoming movements: one movement per payment (its
 * payer's name spelled the bank's way, a quarter with the reference), the rest other customers'
 * transfers with amounts in the same range, so many land in a payment's amount bucket and are scored.
 */
export function reconcileData(payments: number, movements: number) {
  const next = random(18);
  const registered = Date.UTC(2026, 5, 1);
  const name = (i: number) =>
    `${FIRST[i % FIRST.length]} ${LAST[Math.floor(i / FIRST.length) % LAST.length]} ${i % 97}`;
  const open: OpenPayment[] = [];
  const incoming: IncomingMovement[] = [];
  for (let i = 0; i < payments; i++) {
    const amount = 100 + Math.floor(next() * 500_000);
    open.push({
      id: `pay${i}`,
      account_id: null,
      amount_minor: amount,
      currency: 'EUR',
      payer_name: name(i),
      reference: i % 4 === 0 ? `INV-${i}` : null,
      created_at: registered,
    });
    const [first, last, n] = name(i).split(' ');
    incoming.push({
      id: `mov${i}`,
      account_id: 'acc_bench',
      amount_minor: amount,
      currency: 'EUR',
      booked_at: new Date(registered + Math.floor(next() * 20) * DAY_MS).toISOString().slice(0, 10),
      name: `${last!.toUpperCase()}, ${first!.toUpperCase()} ${n}`,
      reference: i % 4 === 0 ? `payment inv ${i}` : null,
    });
  }
  for (let i = payments; i < movements; i++) {
    incoming.push({
      id: `mov${i}`,
      account_id: 'acc_bench',
      amount_minor: 100 + Math.floor(next() * 500_000),
      currency: 'EUR',
      booked_at: new Date(registered - 10 * DAY_MS + Math.floor(next() * 40) * DAY_MS).toISOString().slice(0, 10),
      name: `Customer ${i % 50_000}`,
      reference: null,
    });
  }
  // Booking order, as a scrape would bring them.
  incoming.sort((a, b) => (a.booked_at < b.booked_at ? -1 : a.booked_at > b.booked_at ? 1 : 0));
  return { open, incoming };
}

/** The whole set matched in memory with the live rules. */
export function benchReconcileBatch(payments: number, movements: number) {
  // A tenth of the set first, so the measured run is not the JIT's warm-up.
  const warm = reconcileData(Math.ceil(payments / 10), Math.ceil(movements / 10));
  matchBatch(warm.open, warm.incoming, DEFAULT_WINDOW);
  const { open, incoming } = reconcileData(payments, movements);
  const started = performance.now();
  const result = matchBatch(open, incoming, DEFAULT_WINDOW);
  const seconds = (performance.now() - started) / 1000;
  return {
    reconcile_per_s: Math.round(movements / seconds),
    reconcile_batch: {
      payments,
      movements,
      seconds: round(seconds, 2),
      matched: result.matched,
      ambiguous: result.ambiguous,
      unmatched: result.unmatched,
    },
  };
}

/**
 * The live path with `pending` payments open in the store: new movements stored by the ingest (which
 * queues them), then matched by the background reconciler; the time per movement from the ingest
 * until the queue is empty, one small scrape at a time.
 */
export async function benchReconcileLive(server: RunningServer, key: string, pending: number, rounds: number) {
  const client = makeBenchClient(server.url, key);
  const accountId = await client.createAccount('alice+reconcile', 'reconcile');
  const db = server.store.db;
  const org = await db.selectFrom('accounts').select('org_id').where('id', '=', accountId).executeTakeFirstOrThrow();
  const ledger = await db
    .selectFrom('bank_accounts')
    .select(['id', 'external_id'])
    .where('account_id', '=', accountId)
    .executeTakeFirst();
  const ledgers = new Map([[ledger?.external_id ?? 'current', ledger?.id ?? 'bac_00000000000000000000000009']]);
  const { open } = reconcileData(pending, pending);
  const started = performance.now();
  for (let start = 0; start < open.length; start += 1000) {
    const payments = open.slice(start, start + 1000).map((p) => ({
      external_id: p.id,
      account_id: accountId,
      amount: (p.amount_minor / 100).toFixed(2),
      currency: 'EUR',
      payer_name: p.payer_name,
      reference: p.reference,
    }));
    const reply = await fetch(`${server.url}/v1/expected-payments/batch`, {
      method: 'POST',
      headers: { authorization: `Api-Key ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ payments }),
    });
    if (reply.status !== 200) throw new Error(`batch create answered ${reply.status}: ${await reply.text()}`);
  }
  const createSeconds = (performance.now() - started) / 1000;
  const perMovement: number[] = [];
  const today = new Date().toISOString().slice(0, 10);
  for (let i = 0; i < rounds; i++) {
    const p = open[(i * 7919) % open.length]!;
    const [first, last, n] = p.payer_name.split(' ');
    const t0 = performance.now();
    await server.transact((trx, uow) =>
      ingestMovements(trx, uow, {
        orgId: org.org_id,
        accountId,
        sessionId: null,
        bankAccountIds: ledgers,
        movements: [
          {
            id: `live${i}`,
            bank_account_id: [...ledgers.keys()][0]!,
            booked_at: today,
            amount: (p.amount_minor / 100).toFixed(2),
            currency: 'EUR',
            name: `${last} ${first} ${n}`,
            reference: p.reference,
          },
        ],
        silent: true,
        now: Date.now(),
      }),
    );
    // The reconciler wakes on the ingest's commit; this loop only watches for its result.
    for (;;) {
      const left = await db.selectFrom('reconcile_inbox').select('movement_id').limit(1).executeTakeFirst();
      if (!left) break;
      await new Promise((resolve) => setImmediate(resolve));
    }
    perMovement.push(performance.now() - t0);
  }
  const matched = await db
    .selectFrom('expected_payments')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('account_id', '=', accountId)
    .where('state', '=', 'matched')
    .executeTakeFirstOrThrow();
  return {
    reconcile_new_movement: {
      pending,
      movements: rounds,
      matched: Number(matched.n),
      p50_ms: round(percentile(perMovement, 50), 2),
      p99_ms: round(percentile(perMovement, 99), 2),
      create_per_s: Math.round(pending / createSeconds),
    },
  };
}
