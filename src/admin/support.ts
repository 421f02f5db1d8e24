import { type Config, loadConfig } from '../config.js';
import type { Db } from '../store/db.js';

/** Ends a command with a message on stderr and exit code 2 (a usage or configuration mistake). */
export function fail(message: string): never {
  process.stderr.write(`otpilot: ${message}\n`);
  process.exit(2);
}

/** The configuration from the environment, or exit 2 listing every problem. */
export function config(): Config {
  const loaded = loadConfig();
  if (!loaded.ok) fail(loaded.errors.join('\n'));
  return loaded.config;
}

/** The organization a command acts on: `wanted`, or the only one there is. */
export async function organization(db: Db, wanted: string | undefined): Promise<string> {
  const orgs = await db.selectFrom('organizations').select('id').execute();
  if (wanted) {
    if (!orgs.some((o) => o.id === wanted)) fail(`no organization ${wanted}`);
    return wanted;
  }
  if (orgs.length === 0) fail('the store is empty: run `otpilot start` once first');
  if (orgs.length > 1) fail(`several organizations exist; pass --org (${orgs.map((o) => o.id).join(', ')})`);
  return orgs[0]!.id;
}
