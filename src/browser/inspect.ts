import { Worker } from 'node:worker_threads';
import type { FieldSpec } from '../connectors/sdk.js';

/** What a script declares about itself. */
export interface ScriptMeta {
  bank: string;
  version: string;
  credentialFields: FieldSpec[];
}

export type InspectResult = { ok: true; meta: ScriptMeta } | { ok: false; problem: string };

/** How long loading a script's module may take before it counts as broken, ms. */
const INSPECT_MS = 10_000;
/** Scripts are small: a source beyond this is refused, bytes. */
export const MAX_SCRIPT_BYTES = 256 * 1024;
const SEMVER = /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]{1,40})?$/;

/** Loads the module in a throwaway worker (never in this thread) and reads its exports. */
const INSPECT_SOURCE = `
'use strict';
const { parentPort, workerData } = require('node:worker_threads');
(async () => {
  const m = await import('data:text/javascript;base64,' + Buffer.from(workerData.source).toString('base64'));
  const s = m.default && typeof m.default.login === 'function' ? m.default : m;
  const fns = ['login', 'bankAccounts', 'balances', 'identity', 'movements'].filter((n) => typeof s[n] !== 'function');
  parentPort.postMessage({
    ok: true,
    bank: s.bank, version: s.version,
    credentialFields: JSON.parse(JSON.stringify(s.credentialFields === undefined ? null : s.credentialFields)),
    missing: fns,
  });
})().catch((error) => parentPort.postMessage({ ok: false, problem: String(error && error.message || error).slice(0, 300) }));
`;

function fieldsOk(value: unknown): value is FieldSpec[] {
  return (
    Array.isArray(value) &&
    value.length > 0 &&
    value.length <= 20 &&
    value.every(
      (f) =>
        typeof f === 'object' &&
        f !== null &&
        typeof f.name === 'string' &&
        /^[a-z][a-z0-9_]{0,39}$/.test(f.name) &&
        typeof f.label === 'string' &&
        (f.type === 'text' || f.type === 'password') &&
        typeof f.required === 'boolean',
    )
  );
}

/** Checks a script's shape: it loads, names its bank and a semantic version, declares its fields and functions. */
export async function inspectScript(source: string): Promise<InspectResult> {
  if (Buffer.byteLength(source) > MAX_SCRIPT_BYTES) return { ok: false, problem: 'the script is larger than 256 KiB' };
  const worker = new Worker(INSPECT_SOURCE, {
    eval: true,
    workerData: { source },
    env: {},
    resourceLimits: { maxOldGenerationSizeMb: 64 },
  });
  try {
    const answer = await new Promise<Record<string, unknown>>((resolve) => {
      const timer = setTimeout(
        () => resolve({ ok: false, problem: 'the script did not load within 10 s' }),
        INSPECT_MS,
      );
      worker.once('message', (m: Record<string, unknown>) => {
        clearTimeout(timer);
        resolve(m);
      });
      worker.once('error', (error) => {
        clearTimeout(timer);
        resolve({ ok: false, problem: error.message.slice(0, 300) });
      });
    });
    if (answer['ok'] !== true) return { ok: false, problem: `the script does not load: ${String(answer['problem'])}` };
    const missing = answer['missing'] as string[];
    if (missing.length > 0) return { ok: false, problem: `the script exports no ${missing.join(', ')}` };
    const { bank, version, credentialFields } = answer;
    if (typeof bank !== 'string' || bank.length === 0) return { ok: false, problem: 'the script exports no bank' };
    if (typeof version !== 'string' || !SEMVER.test(version)) {
      return { ok: false, problem: 'the script’s version is not a semantic version (1.2.3)' };
    }
    if (!fieldsOk(credentialFields)) return { ok: false, problem: 'the script’s credentialFields are not valid' };
    return { ok: true, meta: { bank, version, credentialFields } };
  } finally {
    await worker.terminate();
  }
}
