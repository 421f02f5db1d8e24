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
