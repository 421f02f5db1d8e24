import type { AccountsService } from '../accounts/service.js';
import type { StatusCache } from '../accounts/status-cache.js';
import type { CodeLimit } from '../assistance/submit.js';
import type { AuthService } from '../auth/service.js';
import type { TwoFactor } from '../auth/two-factor.js';
import type { Config } from '../config.js';
import type { Clock } from '../core/time.js';
import type { DataService } from '../data/service.js';
import type { Bus } from '../events/bus.js';
import type { EventHorizon } from '../events/horizon.js';
import type { Transact } from '../events/outbox.js';
import type { KeysService } from '../keys/service.js';
import type { ReauthService } from '../reauth/service.js';
import type { ReconcileService } from '../reconcile/service.js';
import type { RelayManagement } from '../relay/management.js';
import type { RelayService } from '../relay/service.js';
import type { Cipher } from '../security/cipher.js';
import type { RateLimits } from '../security/rate-limits.js';
import type { SessionsService } from '../sessions/service.js';
import type { Store } from '../store/db.js';
import type { WebhooksService } from '../webhooks/service.js';

/**
 * Everything a route plugin may be given; built once in server.ts. Most plugins state the few deps
 * they need in their own interface instead.
 */
export interface ApiDeps {
  config: Config;
  store: Store;
  bus: Bus;
  clock: Clock;
  transact: Transact;
  keys: KeysService;
  auth: AuthService;
  twoFactor: TwoFactor;
  data: DataService;
  webhooks: WebhooksService;
  statusCache: StatusCache;
  accounts: AccountsService;
  sessions: SessionsService;
  cipher: Cipher;
  /** The code budget every submission path shares. */
  codeLimit: CodeLimit;
  /** Store-backed counters behind every rate limit. */
  rateLimits: RateLimits;
  relay: RelayService;
  relays: RelayManagement;
  reauth: ReauthService;
  /** Expected payments and their matching (issue 18). */
  reconcile: ReconcileService;
  /** Aborted when the server begins to shut down: long-polls answer at once. */
  shutdown: AbortSignal;
  /** How far the outbox can be read without skipping an uncommitted event (PostgreSQL). */
  horizon: EventHorizon;
}
