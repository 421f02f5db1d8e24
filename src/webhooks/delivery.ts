import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import type { Clock } from '../core/time.js';
import type { Bus } from '../events/bus.js';
import type { EventHorizon } from '../events/horizon.js';
import type { Transact } from '../events/outbox.js';
import type { Cipher } from '../security/cipher.js';
import type { Db, Dialect } from '../store/db.js';
import type { DeliveriesTable } from '../store/schema.js';
import { claimDeliveries, markDead, recordAttempt, releaseDeliveriesOfOthers } from './claim.js';
import { FAN_OUT_BATCH, fanOutPass } from './fan-out.js';
import { sendDelivery } from './send.js';
import type { Sender } from './sender.js';

export interface DeliveryOptions {
  db: Db;
  dialect: Dialect;
  transact: Transact;
  bus: Bus;
  cipher: Cipher;
  clock: Clock;
  random: () => number;
  log: Logger;
  sender: Sender;
  /** Fallback poll behind the wake-ups, ms. */
  pollMs: number;
  /** How long a claimed delivery is ours, ms (a crash mid-delivery means a redelivery after it). */
  leaseMs: number;
  /**
   * The only process that sends (SQLite) [false]: at start it takes over deliveries still leased to
   * a process that is gone instead of waiting out their leases.
   */
  soleWorker?: boolean;
  /** Deliveries in flight at once. */
  concurrency: number;
  version: string;
  /** Events past this are not fanned out yet (an earlier one may still commit). */
  horizon: EventHorizon;
}

export interface DeliveryEngine {
  start(): void;
  stop(): Promise<void>;
  /** Runs fan-out and sending until nothing is due (tests, benchmarks). */
  drain(): Promise<void>;
}

/**
 * Webhook delivery: a fan-out step turns committed outbox events into one delivery per matching
 * destination (organization endpoints, an account's notification endpoint, an account's result
 * webhook), then senders claim due deliveries with a lease, one at a time per destination and
 * account so each receiver sees an account's events in order, and retry on the schedule in retry.ts.
 */
export function makeDeliveryEngine(options: DeliveryOptions): DeliveryEngine {
  const { db, clock, log } = options;
  const owner = `dlv_${hostname()}_${process.pid}_${randomBytes(4).toString('hex')}`;
  const inFlight = new Set<Promise<void>>();
  const timers: NodeJS.Timeout[] = [];
  const unsubscribe: (() => void)[] = [];
  let running = false;
  let fanning = false;
  let fanAgain = false;
  let sending = false;
  let sendAgain = false;

  async function deliver(delivery: DeliveriesTable): Promise<void> {
    const outcome = await sendDelivery(options, delivery);
    if ('unsendable' in outcome) return markDead(db, delivery, owner, outcome.unsendable, clock());
    const { status, disabled } = await recordAttempt(options.transact, {
      delivery,
      owner,
      result: outcome.sent,
      at: clock(),
      random: options.random(),
    });
    if (disabled) log.warn({ endpoint_id: disabled }, 'webhook endpoint disabled after 5 days of failures');
    // The next delivery in this line may be due now.
    if (status !== 'failed') options.bus.publish('deliveries');
  }

  /** The claiming pass running now, if any (stop waits for it before the store closes). */
  let sendPass: Promise<void> = Promise.resolve();

  function send(): Promise<void> {
    if (!running) return Promise.resolve();
    if (sending) {
      sendAgain = true;
      return sendPass;
    }
    sending = true;
    sendPass = sendLoop();
    return sendPass;
  }

  async function sendLoop(): Promise<void> {
    try {
      do {
        sendAgain = false;
        while (running && inFlight.size < options.concurrency) {
          const claimed = await claimDeliveries(db, {
            owner,
            now: clock(),
            leaseMs: options.leaseMs,
            limit: options.concurrency - inFlight.size,
          });
          for (const delivery of claimed) {
            const task: Promise<void> = deliver(delivery)
              .catch((error: unknown) =>
                log.error({ err: error, delivery_id: delivery.id }, 'webhook delivery crashed'),
              )
              .finally(() => {
                inFlight.delete(task);
                void send();
              });
            inFlight.add(task);
          }
          if (claimed.length === 0) break;
        }
      } while (sendAgain && running);
    } catch (error) {
      log.error({ err: error }, 'claiming deliveries failed');
    } finally {
      sending = false;
    }
  }

  /** The fan-out pass running now, if any (stop waits for it before the store closes). */
  let fanPass: Promise<void> = Promise.resolve();

  function fan(): Promise<void> {
    if (!running) return Promise.resolve();
    if (fanning) {
      fanAgain = true;
      return fanPass;
    }
    fanning = true;
    fanPass = fanLoop();
    return fanPass;
  }

  async function fanLoop(): Promise<void> {
    try {
      do {
        fanAgain = false;
        while ((await fanOutPass(options)) === FAN_OUT_BATCH) {
          // a full batch: there may be more
        }
      } while (fanAgain && running);
    } catch (error) {
      log.error({ err: error }, 'webhook fan-out failed');
    } finally {
      fanning = false;
    }
  }

  return {
    start() {
      running = true;
      unsubscribe.push(options.bus.subscribe('event', () => void fan()));
      unsubscribe.push(options.bus.subscribe('deliveries', () => void send()));
      timers.push(
        setInterval(() => {
          void fan();
          void send();
        }, options.pollMs),
      );
      const takeOver = options.soleWorker
        ? releaseDeliveriesOfOthers(db, owner).catch((error: unknown) =>
            log.error({ err: error }, 'releasing the deliveries of a previous process failed'),
          )
        : Promise.resolve();
      void takeOver.then(() => fan()).then(() => send());
    },
    async stop() {
      running = false;
      for (const off of unsubscribe) off();
      for (const timer of timers) clearInterval(timer);
      await Promise.allSettled([fanPass, sendPass]);
      await Promise.allSettled([...inFlight]);
      await options.sender.close();
    },
    async drain() {
      await fan();
      await send();
      await Promise.allSettled([...inFlight]);
    },
  };
}
