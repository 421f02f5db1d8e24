import { createRequire } from 'node:module';
import { isAbsolute, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Connector } from './sdk.js';

/**
 * A connector module that cannot be used (missing, throwing, misshapen, or claiming a bank id twice).
 * A configuration mistake: the CLI exits 2 with its message, before anything is opened or loaded.
 */
export class ConnectorLoadError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConnectorLoadError';
  }
}

/** Where a connector came from (`otpilot connectors list`). */
export type ConnectorSource = { kind: 'builtin' } | { kind: 'plugin'; specifier: string };

export interface LoadedConnector {
  connector: Connector;
  source: ConnectorSource;
}

const ID = /^[a-z0-9][a-z0-9_-]{0,63}$/;
const FIELD = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;

/** Why `value` is not a usable connector, or null when it is. */
export function connectorProblem(value: unknown): string | null {
  if (typeof value !== 'object' || value === null) return 'it is not an object';
  const c = value as Record<string, unknown>;
  if (typeof c['id'] !== 'string' || !ID.test(c['id']))
    return 'id must be lowercase letters, digits, "_" or "-" (at most 64)';
  const named = `connector "${c['id']}"`;
  if (typeof c['name'] !== 'string' || c['name'].trim() === '') return `${named}: name must be a non-empty string`;
  if (typeof c['version'] !== 'string' || c['version'].trim() === '' || c['version'].length > 64)
    return `${named}: version must be a non-empty string (at most 64 characters)`;
  if (c['credential_fields'] === undefined && c['credentialFields'] !== undefined)
    return `${named}: credentialFields is credential_fields since SDK 1.0`;
  const fields = c['credential_fields'];
  if (!Array.isArray(fields)) return `${named}: credential_fields must be an array`;
  const seen = new Set<string>();
  for (const f of fields as unknown[]) {
    const field = (typeof f === 'object' && f !== null ? f : {}) as Record<string, unknown>;
    const name = field['name'];
    if (typeof name !== 'string' || !FIELD.test(name))
      return `${named}: every credential field needs a name of letters, digits and "_"`;
    if (seen.has(name)) return `${named}: credential field ${name} is listed twice`;
    seen.add(name);
    if (typeof field['label'] !== 'string') return `${named}: credential field ${name} needs a label`;
    if (field['type'] !== 'text' && field['type'] !== 'password')
      return `${named}: credential field ${name}: type must be text or password`;
    if (typeof field['required'] !== 'boolean')
      return `${named}: credential field ${name}: required must be true or false`;
  }
  if (typeof c['login'] !== 'function') return `${named}: login must be a function`;
  return limitsProblem(named, c['limits']);
}

function limitsProblem(named: string, limits: unknown): string | null {
  if (limits === undefined) return null;
  if (typeof limits !== 'object' || limits === null) return `${named}: limits must be an object`;
  const { max_concurrent_logins: cap, min_login_spacing_seconds: spacing } = limits as Record<string, unknown>;
  if (cap !== undefined && !(Number.isInteger(cap) && (cap as number) >= 1))
    return `${named}: limits.max_concurrent_logins must be a whole number ≥ 1`;
  if (spacing !== undefined && !(typeof spacing === 'number' && Number.isFinite(spacing) && spacing >= 0))
    return `${named}: limits.min_login_spacing_seconds must be a number ≥ 0`;
  return null;
}

/** Imports one module specifier: a path (relative to `cwd`), a file: URL, or an installed package name. */
async function importModule(specifier: string, cwd: string): Promise<Record<string, unknown>> {
  if (specifier.startsWith('file:')) return import(specifier);
  if (specifier.startsWith('.') || isAbsolute(specifier)) return import(pathToFileURL(resolve(cwd, specifier)).href);
  try {
    return await import(specifier);
  } catch (error) {
    if ((error as { code?: string }).code !== 'ERR_MODULE_NOT_FOUND') throw error;
    // Not installed beside otpilot: a package installed in the working folder will do.
    const found = createRequire(join(cwd, 'package.json')).resolve(specifier);
    return import(pathToFileURL(found).href);
  }
}

function describeImportFailure(error: unknown): string {
  const code = (error as { code?: string }).code;
  const message = (error instanceof Error ? error.message : String(error)).split('\n')[0];
  // Node's own words say which module: the one named, or a package it imports that is not installed.
  if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') return `the module was not found (${message})`;
  return `loading it threw: ${message}`;
}

/**
 * Loads every module of OTPILOT_CONNECTORS, in order. Each default export is a connector or an array
 * of connectors. All or nothing: the first bad module throws a ConnectorLoadError naming it.
 */
export async function loadPlugins(specifiers: readonly string[], cwd: string): Promise<LoadedConnector[]> {
  const loaded: LoadedConnector[] = [];
  for (const specifier of specifiers) {
    const fail = (why: string) =>
      new ConnectorLoadError(`OTPILOT_CONNECTORS: cannot load connector module "${specifier}": ${why}`);
    let module: Record<string, unknown>;
    try {
      module = await importModule(specifier, cwd);
    } catch (error) {
      throw fail(describeImportFailure(error));
    }
    const exported = module['default'];
    if (exported === undefined) throw fail('it has no default export (export default a connector or an array)');
    const list = Array.isArray(exported) ? (exported as unknown[]) : [exported];
    if (list.length === 0) throw fail('its default export is an empty array');
    for (const candidate of list) {
      const problem = connectorProblem(candidate);
      if (problem) throw fail(problem);
      loaded.push({ connector: candidate as Connector, source: { kind: 'plugin', specifier } });
    }
  }
  return loaded;
}

/** Refuses two connectors with one id (a plugin's id may not clash with a built-in one or another plugin's). */
export function checkUniqueIds(all: readonly LoadedConnector[]): void {
  const seen = new Map<string, ConnectorSource>();
  for (const { connector, source } of all) {
    const before = seen.get(connector.id);
    if (before) {
      const where = (s: ConnectorSource) => (s.kind === 'builtin' ? 'a built-in connector' : `"${s.specifier}"`);
      throw new ConnectorLoadError(
        `OTPILOT_CONNECTORS: the bank id "${connector.id}" is claimed twice: by ${where(before)} and by ${where(source)}`,
      );
    }
    seen.set(connector.id, source);
  }
}
