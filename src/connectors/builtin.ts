import type { BrowserRuntime } from '../browser/runtime.js';
import type { Config } from '../config.js';
import { makeBankFetch } from './bank-http.js';
import { makeFintsConnector } from './fints/connector.js';
import { type LoadedConnector, loadPlugins } from './plugins.js';
import { type ConnectorRegistry, makeConnectorRegistry } from './registry.js';
import { makeSandboxConnector } from './sandbox.js';
import type { Connector } from './sdk.js';

/** The connectors compiled in; their bank ids are reserved (a plugin may not claim one). */
export function builtinConnectors(
  config: Config,
  baseUrl: () => string,
  browser?: Pick<BrowserRuntime, 'sandboxWebConnector'>,
): Connector[] {
  const builtin: Connector[] = [];
  if (config.sandbox || config.sandboxUrl) {
    const sandboxBase = () => config.sandboxUrl ?? `${baseUrl()}/sandbox-bank/`;
    builtin.push(
      makeSandboxConnector({
        baseUrl: sandboxBase,
        fetch: makeBankFetch({ connectionsPerOrigin: config.bankConnections }),
      }),
    );
    // The sandbox bank's website through its reference browser script (needs the store's script catalog).
    if (browser) builtin.push(browser.sandboxWebConnector(() => new URL('web/', sandboxBase()).href));
  }
  builtin.push(makeFintsConnector(config.fints));
  return builtin;
}

/**
 * The registry of the built-in connectors (through `replace`, when given) and the loaded plugins;
 * throws a ConnectorLoadError (a configuration mistake, exit 2) for an id claimed twice.
 */
export function registryOf(
  builtin: Connector[],
  plugins: LoadedConnector[],
  replace?: (builtin: Connector[]) => Connector[],
): ConnectorRegistry {
  return makeConnectorRegistry([...(replace ? replace(builtin) : builtin), ...plugins]);
}

/** The built-in connectors and those of OTPILOT_CONNECTORS (a bad module throws a ConnectorLoadError). */
export async function loadConnectors(config: Config, baseUrl: () => string): Promise<ConnectorRegistry> {
  return registryOf(builtinConnectors(config, baseUrl), await loadPlugins(config.connectors, process.cwd()));
}
