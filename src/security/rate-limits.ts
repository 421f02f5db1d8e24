import { sql } from 'kysely';
import type { Clock } from '../core/time.js';
import type { Db } from '../store/db.js';

/** What one counted request learned. */
export interface RateVerdict {
  allowed: boolean;
  /** Requests counted in this window, this one included. */
  hits: number;
  /** Until the window ends, ms. */
  retryAfterMs: number;
}

/**
 * Rate limits counted in the store, so every process and every path that shares a key shares one
 * count: a PostgreSQL deployment with several API processes limits as one. A key's window opens at
 * its first hit and lasts `windowMs` (as @fastify/rate-limit's own store counts).
 */
export interface RateLimits {
  /** Counts one request against `key` and says whether it is within `max` per `windowMs`. */
  hit(key: string, max: number, windowMs: number): Promise<RateVerdict>;
  /** Reads `key`'s count without counting. */
  peek(key: string, max: number, windowMs: number): Promise<RateVerdict>;
  /** Drops windows that began before `before` (ms); returns how many. */
  prune(before: number): Promise<number>;
}

export function makeRateLimits(deps: { db: Db; clock: Clock }): RateLimits {
  const { db, clock } = deps;
  return {
    async hit(key, max, windowMs) {
      const now = clock();
      // One statement: the key's first hit opens a window; a hit after the window ended opens a new
      // one; any other counts one more. (SET expressions all read the row as it was.)
      const expired = sql<boolean>`rate_limits.window_start + ${windowMs} <= ${now}`;
      const row = await db
        .insertInto('rate_limits')
        .values({ key, window_start: now, hits: 1 })
        .onConflict((oc) =>
          oc.column('key').doUpdateSet({
            hits: sql`case when ${expired} then 1 else rate_limits.hits + 1 end`,
            window_start: sql`case when ${expired} then ${now} else rate_limits.window_start end`,
          }),
        )
        .returning(['hits', 'window_start'])
        .executeTakeFirstOrThrow();
      const hits = Number(row.hits);
      return { allowed: hits <= max, hits, retryAfterMs: Number(row.window_start) + windowMs - now };
    },
    async peek(key, max, windowMs) {
      const now = clock();
      const row = await db
        .selectFrom('rate_limits')
        .select(['hits', 'window_start'])
        .where('key', '=', key)
        .executeTakeFirst();
      if (!row || Number(row.window_start) + windowMs <= now) return { allowed: max > 0, hits: 0, retryAfterMs: 0 };
      const hits = Number(row.hits);
      return { allowed: hits < max, hits, retryAfterMs: Number(row.window_start) + windowMs - now };
    },
    async prune(before) {
      const result = await db.deleteFrom('rate_limits').where('window_start', '<', before).executeTakeFirst();
      return Number(result.numDeletedRows);
    },
  };
}

/** The store interface of @fastify/rate-limit (`incr`, `read`, `child`). */
type Callback = (error: Error | null, result?: { current: number; ttl: number }) => void;

/**
 * A @fastify/rate-limit store over `RateLimits`: the plugin keeps deciding which routes are limited
 * and how keys are made, the counts live in the store. Its `child` ignores the route, so a route
 * mounted under two paths (`/v1/…` and the dashboard's) shares one count per key.
 */
export function rateLimitStore(limits: RateLimits) {
  return class StoreBackedRateLimit {
    incr(key: string, callback: Callback, timeWindow: number, max: number): void {
      limits.hit(key, max, timeWindow).then(
        (verdict) => callback(null, { current: verdict.hits, ttl: verdict.retryAfterMs }),
        (error: Error) => callback(error),
      );
    }
    read(key: string, callback: Callback, timeWindow: number, max: number): void {
      limits.peek(key, max, timeWindow).then(
        (verdict) => callback(null, { current: verdict.hits, ttl: verdict.retryAfterMs }),
        (error: Error) => callback(error),
      );
    }
    child(): StoreBackedRateLimit {
      return this;
    }
  };
}
