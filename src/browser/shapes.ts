import { ConnectorError } from '../connectors/sdk.js';

/** What a script's data function answered is checked before the engine stores it: wrong shapes are a broken script. */
function broken(what: string): ConnectorError {
  return new ConnectorError('connector_broken', `the bank script's ${what} answer has the wrong shape`);
}

function hasStrings(value: unknown, keys: string[]): boolean {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const record = value as Record<string, unknown>;
  return keys.every((k) => typeof record[k] === 'string');
}

export function checkObject<T>(value: unknown, what: string, keys: string[]): T {
  if (!hasStrings(value, keys)) throw broken(what);
  return value as T;
}

export function checkList<T>(value: unknown, what: string, keys: string[]): T[] {
  if (!Array.isArray(value) || !value.every((item) => hasStrings(item, keys))) throw broken(what);
  return value as T[];
}
