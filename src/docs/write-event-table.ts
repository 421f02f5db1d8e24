import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { withEventTable } from '../events/catalog.js';

/** `npm run docs:events`: rewrites docs/webhooks.md's event table from the code's event list. */
const path = fileURLToPath(new URL('../../docs/webhooks.md', import.meta.url));
const before = readFileSync(path, 'utf8');
const after = withEventTable(before);
if (after !== before) writeFileSync(path, after);
console.log(
  after === before ? 'docs/webhooks.md: the event table is up to date' : 'docs/webhooks.md: event table rewritten',
);
