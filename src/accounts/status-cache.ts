import type { Bus } from '../events/bus.js';
import type { Db } from '../store/db.js';
import { readStatus, type StatusView, statusTag } from './status.js';

export interface CachedStatus {
  status: StatusView;
  etag: string;
}

export interface StatusCache {
  /** The account's status in this organization, or null when it has none. */
  get(orgId: string, accountId: string): Promise<CachedStatus | null>;
  close(): void;
}

/**
 * Status is the most polled read. Entries are dropped on every `account:<id>` wake-up (published
 * after each commit that changes an account's status, here or, with PostgreSQL, in any process), and
 * live at most `ttlMs` in case a wake-up is ever missed. Bounded to `maxEntries` [10 000], least
 * recently used first out (clearing it wholesale when full made every poll of a large fleet a miss).
 */
export function makeStatusCache(deps: { db: Db; bus: Bus; ttlMs: number; maxEntries?: number }): StatusCache {
  const entries = new Map<string, { orgId: string; value: CachedStatus; until: number }>();
  const max = deps.maxEntries ?? 10_000;
  // Bumped on every invalidation: a read that overlapped one is returned but not cached.
  let generation = 0;
  const unsubscribe = deps.bus.subscribeAll((topic) => {
    if (!topic.startsWith('account:')) return;
    generation++;
    entries.delete(topic.slice('account:'.length));
  });
  return {
    async get(orgId, accountId) {
      const now = Date.now();
      const hit = entries.get(accountId);
      if (hit && hit.orgId === orgId && hit.until > now) {
        // Map order is the recency order: a hit moves to the back.
        entries.delete(accountId);
        entries.set(accountId, hit);
        return hit.value;
      }
      const before = generation;
      const status = await readStatus(deps.db, orgId, accountId);
      if (!status) return null;
      const value = { status, etag: statusTag(status) };
      if (before === generation) {
        entries.delete(accountId);
        if (entries.size >= max) {
          const oldest = entries.keys().next();
          if (!oldest.done) entries.delete(oldest.value);
        }
        entries.set(accountId, { orgId, value, until: now + deps.ttlMs });
      }
      return value;
    },
    close: unsubscribe,
  };
}
