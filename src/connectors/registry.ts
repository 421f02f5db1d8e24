import type { Connector } from './sdk.js';

export interface ConnectorRegistry {
  get(id: string): Connector | undefined;
  all(): Connector[];
}

export function makeConnectorRegistry(connectors: Connector[]): ConnectorRegistry {
  const byId = new Map(connectors.map((c) => [c.id, c]));
  return { get: (id) => byId.get(id), all: () => [...byId.values()] };
}
