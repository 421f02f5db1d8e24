import { type ConnectorSource, checkUniqueIds, type LoadedConnector } from './plugins.js';
import type { Connector } from './sdk.js';

export interface ConnectorRegistry {
  get(id: string): Connector | undefined;
  all(): Connector[];
  /** Every connector with where it came from (built in, or the OTPILOT_CONNECTORS module). */
  entries(): LoadedConnector[];
}

/** The connectors by id; throws a ConnectorLoadError when two claim one id. Bare connectors count as built in. */
export function makeConnectorRegistry(connectors: ReadonlyArray<Connector | LoadedConnector>): ConnectorRegistry {
  const builtin: ConnectorSource = { kind: 'builtin' };
  const entries = connectors.map((c) => ('connector' in c ? c : { connector: c, source: builtin }));
  checkUniqueIds(entries);
  const byId = new Map(entries.map((e) => [e.connector.id, e.connector]));
  return { get: (id) => byId.get(id), all: () => [...byId.values()], entries: () => [...entries] };
}

/**
 * The engine's per-bank limits: OTPILOT_BANK_CONCURRENCY and each connector's own `limits` (the
 * lower cap wins), and the connectors' spacing between logins, ms.
 */
export function bankLimitsOf(
  registry: ConnectorRegistry,
  configured: ReadonlyMap<string, number>,
): { bankLimits: Map<string, number>; bankSpacing: Map<string, number> } {
  const bankLimits = new Map(configured);
  const bankSpacing = new Map<string, number>();
  for (const { id, limits } of registry.all()) {
    const cap = limits?.max_concurrent_logins;
    if (cap !== undefined) bankLimits.set(id, Math.min(cap, bankLimits.get(id) ?? cap));
    const seconds = limits?.min_login_spacing_seconds;
    if (seconds !== undefined && seconds > 0) bankSpacing.set(id, Math.round(seconds * 1000));
  }
  return { bankLimits, bankSpacing };
}
