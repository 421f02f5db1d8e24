import { parseArgs } from 'node:util';
import { config } from '../admin/support.js';
import { loadConnectors } from './builtin.js';

/**
 * `otpilot connectors list [--json]`: what this configuration loads, as `GET /v1/banks` lists it
 * (id, name, version, credential fields), and where each came from. Opens no store.
 */
export async function connectorsList(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { json: { type: 'boolean', default: false } } });
  const registry = await loadConnectors(config(), () => '');
  const rows = registry.entries().map(({ connector, source }) => ({
    id: connector.id,
    name: connector.name,
    version: connector.version,
    credential_fields: connector.credential_fields,
    source: source.kind === 'builtin' ? 'builtin' : source.specifier,
  }));
  if (values.json) {
    process.stdout.write(`${JSON.stringify(rows)}\n`);
    return;
  }
  if (rows.length === 0)
    process.stdout.write('no connectors (OTPILOT_SANDBOX is off and OTPILOT_CONNECTORS is empty)\n');
  for (const row of rows) {
    const fields = row.credential_fields
      .map((f) => `${f.name} (${f.type}${f.required ? ', required' : ''})`)
      .join(', ');
    process.stdout.write(`${row.id}\t${row.name}\t${row.version}\t${row.source}\n  credentials: ${fields || 'none'}\n`);
  }
}
