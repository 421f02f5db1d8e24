import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { config, fail } from '../admin/support.js';
import { systemClock } from '../core/time.js';
import { openStore } from '../startup.js';
import { inspectScript } from './inspect.js';
import { makeScriptCatalog, type ScriptAction, type ScriptCatalog, type ScriptView } from './scripts.js';
import { tryScript } from './try.js';

/*
 * `otpilot scripts …`: bank scripts from the operator's machine, on the store directly (the same
 * checks and moves as `/v1/banks/:id/scripts`, docs/browser-scripts.md).
 */

const print = (text: string): void => {
  process.stdout.write(`${text}\n`);
};

const line = (s: ScriptView) =>
  [
    s.bank_id,
    s.version,
    s.state,
    s.sha256.slice(0, 12),
    s.pinned_accounts.length ? `pinned ${s.pinned_accounts.join(',')}` : '',
  ]
    .filter(Boolean)
    .join('  ');

function readSource(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return fail(`cannot read ${file}`);
  }
}

async function withCatalog(work: (catalog: ScriptCatalog) => Promise<void>): Promise<void> {
  const store = await openStore(config());
  try {
    await work(makeScriptCatalog({ db: store.db, clock: systemClock }));
  } finally {
    await store.close();
  }
}

/** Exit 2 with the refusal's message, or the value. */
function value<T>(result: { ok: true; value: T } | { ok: false; message: string }): T {
  if (!result.ok) fail(result.message);
  return result.value;
}

export async function scriptsCommand(sub: string | undefined, args: string[]): Promise<void> {
  const { positionals, values } = parseArgs({
    args,
    allowPositionals: true,
    options: { json: { type: 'boolean', default: false }, account: { type: 'string' } },
  });
  const show = (view: ScriptView) => print(values.json ? JSON.stringify(view) : line(view));
  switch (sub) {
    case 'push': {
      const [file] = positionals;
      if (!file || positionals.length !== 1) fail('usage: otpilot scripts push FILE');
      const source = readSource(file);
      const inspected = await inspectScript(source);
      if (!inspected.ok) fail(inspected.problem);
      return withCatalog(async (catalog) => show(value(await catalog.create(inspected.meta.bank, source))));
    }
    case 'try': {
      const [file] = positionals;
      const accountId = values.account;
      if (!file || positionals.length !== 1 || !accountId) fail('usage: otpilot scripts try FILE --account acc_…');
      const source = readSource(file);
      const inspected = await inspectScript(source);
      if (!inspected.ok) fail(inspected.problem);
      const store = await openStore(config());
      try {
        const catalog = makeScriptCatalog({ db: store.db, clock: systemClock });
        const { bank, version } = inspected.meta;
        const result = await tryScript({
          store,
          catalog,
          bankId: bank,
          version,
          source,
          accountId,
          timeoutMs: 600_000,
        });
        if (!result.ok) return fail(result.message);
        const o = result.outcome;
        print(
          values.json
            ? JSON.stringify(o)
            : [o.session_id, `script ${o.script_version}`, o.state, o.failure_category, o.failure_message, o.url]
                .filter(Boolean)
                .join('  '),
        );
        if (o.state !== 'succeeded') process.exitCode = 1;
      } finally {
        await store.close();
      }
      return;
    }
    case 'list': {
      const [bank] = positionals;
      if (!bank || positionals.length !== 1) fail('usage: otpilot scripts list BANK');
      return withCatalog(async (catalog) => {
        const list = value(await catalog.list(bank));
        if (values.json) return print(JSON.stringify({ data: list }));
        if (list.length === 0) return print('no scripts');
        for (const s of list) print(line(s));
      });
    }
    case 'review':
    case 'promote':
    case 'deprecate': {
      const [bank, version] = positionals;
      if (!bank || !version || positionals.length !== 2) fail(`usage: otpilot scripts ${sub} BANK VERSION`);
      const action: ScriptAction = sub;
      return withCatalog(async (catalog) => show(value(await catalog.change(bank, version, action))));
    }
    default:
      fail('usage: otpilot scripts push|try|list|review|promote|deprecate (see otpilot help)');
  }
}
