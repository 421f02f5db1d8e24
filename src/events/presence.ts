import type { Bus } from './bus.js';
import { topics } from './topics.js';

/**
 * Whether anything of one optional feature may exist (held SMS, open data results, connect sessions
 * waiting for a login), so the listener serving it can skip its query on every login while nothing
 * does. "Nothing" is believed only after a look found nothing and nothing was announced since.
 */
export interface Presence {
  /**
   * False without a query while nothing is known to exist; otherwise true, after a look when the
   * last answer is older than `trustMs` (or was forgotten).
   */
  mayExist(): Promise<boolean>;
  /** Stops listening for announcements. */
  stop(): void;
}

export interface PresenceOptions {
  bus: Bus;
  /** The topic the feature's writes publish after they commit (`announce`). */
  topic: string;
  /** Whether anything of the feature exists now: one cheap query. */
  look: () => Promise<boolean>;
  /**
   * How long a look that found something is believed, ms [0: look on every call]. A look that
   * found nothing is believed until an announcement or a resync, however long that takes.
   */
  trustMs?: number;
  /** Monotonic ms [performance.now]. */
  now?: () => number;
}

/**
 * Announcements reach every process: this one at once, the others through the PostgreSQL bus, which
 * delivers notifications in commit order and rings `resync` after it lost some, which forgets the
 * belief as an announcement does. A look that was running when an announcement came is not believed.
 */
export function makePresence(options: PresenceOptions): Presence {
  const now = options.now ?? (() => performance.now());
  const trustMs = options.trustMs ?? 0;
  type Known = { kind: 'unknown' } | { kind: 'none' } | { kind: 'some'; at: number };
  let known: Known = { kind: 'unknown' };
  // Counts announcements, so a look overtaken by one does not record its stale answer.
  let generation = 0;
  const forget = () => {
    generation++;
    known = { kind: 'unknown' };
  };
  const unsubscribes = [options.bus.subscribe(options.topic, forget), options.bus.subscribe(topics.resync, forget)];

  return {
    async mayExist() {
      switch (known.kind) {
        case 'none':
          return false;
        case 'some':
          if (now() - known.at < trustMs) return true;
          break;
        case 'unknown':
          break;
        default: {
          const never: never = known;
          throw new Error(`unknown presence ${String(never)}`);
        }
      }
      const before = generation;
      const at = now();
      const found = await options.look();
      if (generation === before) known = found ? { kind: 'some', at } : { kind: 'none' };
      // Overtaken by an announcement: something may exist whatever the look said.
      return found || generation !== before;
    },
    stop() {
      for (const unsubscribe of unsubscribes) unsubscribe();
    },
  };
}
