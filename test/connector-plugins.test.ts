import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { ConnectorLoadError, loadPlugins } from '../src/connectors/plugins.js';
import { makeConnectorRegistry } from '../src/connectors/registry.js';
import type {
  Connector,
  LoginContext,
  ApprovalDescriptor as SdkApprovalDescriptor,
  CodeDescriptor as SdkCodeDescriptor,
} from '../src/connectors/sdk.js';
import { defineConnector, isConnectorError, isEngineStop } from '../src/connectors/sdk.js';
import type {
  ApprovalDescriptor as CoreApprovalDescriptor,
  CodeDescriptor as CoreCodeDescriptor,
} from '../src/core/descriptor.js';
import { AssistanceEnded } from '../src/engine/handoff.js';
import { classifyFailure } from '../src/engine/outcome.js';
import { ConnectorTimeout } from '../src/engine/watchdog.js';
import { otpilot, processEnv } from './helpers/process.js';
import { TEST_ENV, tempDir } from './helpers/server.js';

/*
 * OTPILOT_CONNECTORS as an operator meets it, through the real CLI (`otpilot connectors list`,
 * `otpilot start`): what loads, and every way a module is refused (exit 2, a message naming it, nothing
 * opened). Also the example connector's own test file, run the way its author runs it. No store.
 */

const run = promisify(execFile);
const dir = tempDir();
const EXAMPLE = resolve(import.meta.dirname, '..', 'examples', 'connector');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A module in the temp folder; returns its path. */
function module(name: string, source: string): string {
  const path = join(dir, name);
  writeFileSync(path, source);
  return path;
}

const literal = (id: string) =>
  `{ id: '${id}', name: 'Bank ${id}', version: '2.0.0', credential_fields: [], async login() { throw { kind: 'bank_unavailable' }; } }`;
const valid = (id: string) => `export default ${literal(id)};`;

function env(connectors: string, extra: Record<string, string> = {}) {
  return { ...process.env, ...TEST_ENV, OTPILOT_DATA_DIR: join(dir, 'data'), OTPILOT_CONNECTORS: connectors, ...extra };
}

describe('otpilot connectors list', () => {
  it('prints the built-in and plugin connectors with their versions and credential fields', async () => {
    const two = module('two.js', `export default [${literal('one')}, ${literal('two')}];`);
    const listed = await otpilot(['connectors', 'list', '--json'], env(`${join(EXAMPLE, 'index.js')},${two}`));
    expect(listed.code, listed.stderr).toBe(0);
    expect(JSON.parse(listed.stdout)).toEqual([
      expect.objectContaining({ id: 'sandbox', version: '1.0.0', source: 'builtin' }),
      expect.objectContaining({ id: 'fints', version: '1.0.0', source: 'builtin' }),
      {
        id: 'example',
        name: 'Example Bank',
        version: '0.1.0',
        credential_fields: [
          { name: 'username', label: 'Username', type: 'text', required: true },
          { name: 'password', label: 'Password', type: 'password', required: true },
        ],
        source: join(EXAMPLE, 'index.js'),
      },
      expect.objectContaining({ id: 'one', version: '2.0.0', source: two }),
      expect.objectContaining({ id: 'two', source: two }),
    ]);
    const text = await otpilot(['connectors', 'list'], env(join(EXAMPLE, 'index.js'), { OTPILOT_SANDBOX: 'false' }));
    expect(text.stdout).toContain(
      `example\tExample Bank\t0.1.0\t${join(EXAMPLE, 'index.js')}\n  credentials: username (text, required), password (password, required)\n`,
    );
  });

  it('refuses a bad module with exit code 2 and a message that names it', async () => {
    const cases: Array<[string, string]> = [
      ['./missing-connector.js', 'the module was not found'],
      [module('throws.js', "throw new Error('no config file');"), 'loading it threw: no config file'],
      [module('none.js', 'export const connector = {};'), 'it has no default export'],
      [
        module('needs.js', "import 'otpilot-no-such-package';\nexport default {};"),
        "the module was not found (Cannot find package 'otpilot-no-such-package'",
      ],
      [module('empty.js', 'export default [];'), 'its default export is an empty array'],
      [
        module('noversion.js', valid('nov').replace("version: '2.0.0', ", '')),
        'connector "nov": version must be a non-empty string',
      ],
      [
        module('old.js', valid('old').replace('credential_fields', 'credentialFields')),
        'connector "old": credentialFields is credential_fields since SDK 1.0',
      ],
      [module('badid.js', valid('Bad Id')), 'id must be lowercase letters'],
      [
        module('nologin.js', valid('nologin').replace(/async login.*\} \};/, '};')),
        'connector "nologin": login must be a function',
      ],
      [
        module(
          'limits.js',
          valid('lim').replace('credential_fields', 'limits: { max_concurrent_logins: 0 }, credential_fields'),
        ),
        'limits.max_concurrent_logins must be a whole number',
      ],
    ];
    for (const [specifier, message] of cases) {
      const refused = await loadPlugins([specifier], process.cwd()).then(
        () => null,
        (e: unknown) => e,
      );
      expect(refused, specifier).toBeInstanceOf(ConnectorLoadError);
      expect((refused as Error).message).toContain(`OTPILOT_CONNECTORS: cannot load connector module "${specifier}": `);
      expect((refused as Error).message).toContain(message);
    }
    const twice = module('dup.js', valid('dup'));
    const loaded = await loadPlugins([twice, twice], process.cwd());
    expect(() => makeConnectorRegistry(loaded)).toThrow(
      `the bank id "dup" is claimed twice: by "${twice}" and by "${twice}"`,
    );
    // Through the CLI: exit code 2 and the message, for a missing module and a clash with a built-in connector.
    const missing = await otpilot(['connectors', 'list'], env('./missing-connector.js'));
    expect(missing).toMatchObject({ code: 2, stdout: '' });
    expect(missing.stderr).toMatch(
      /^otpilot: OTPILOT_CONNECTORS: cannot load connector module "\.\/missing-connector\.js": the module was not found \(Cannot find module '.*missing-connector\.js'/,
    );
    const clash = module('sandbox.js', valid('sandbox'));
    const clashed = await otpilot(['connectors', 'list'], env(clash));
    expect(clashed.code).toBe(2);
    expect(clashed.stderr).toContain(
      `the bank id "sandbox" is claimed twice: by a built-in connector and by "${clash}"`,
    );
  });

  it('stops `otpilot start` before anything is opened', async () => {
    const dataDir = join(dir, 'start');
    mkdirSync(dataDir);
    const bad = module('bad-start.js', valid('BAD'));
    const started = await otpilot(
      ['start'],
      await processEnv(dataDir, { OTPILOT_CONNECTORS: `${join(EXAMPLE, 'index.js')},${bad}` }),
    );
    expect(started.code).toBe(2);
    expect(started.stderr).toContain(`cannot load connector module "${bad}"`);
    expect(existsSync(join(dataDir, 'otpilot.db'))).toBe(false);
  });
});

describe('the example connector', () => {
  it('is shown whole in docs/connectors.md (its test file, as the walkthrough says)', () => {
    const doc = readFileSync(resolve(import.meta.dirname, '..', 'docs', 'connectors.md'), 'utf8');
    // The file minus its header comment is the doc's block.
    const file = readFileSync(join(EXAMPLE, 'connector.test.js'), 'utf8').replace(/^(\/\/.*\n)+/, '');
    expect(doc).toContain(`\`\`\`js\n${file}\`\`\``);
  });

  it("passes its own tests (node --test, the SDK's test kit, its own bank)", async () => {
    const { stdout } = await run(process.execPath, ['--test', join(EXAMPLE, 'connector.test.js')]);
    expect(stdout).toMatch(/# pass 4\n# fail 0/);
  });
});

describe('SDK 1.0', () => {
  it('types credential keys from credential_fields', () => {
    const connector = defineConnector({
      id: 'typed',
      name: 'Typed',
      version: '1.0.0',
      credential_fields: [
        { name: 'user', label: 'User', type: 'text', required: true },
        { name: 'pin', label: 'PIN', type: 'password', required: true },
      ],
      async login(ctx) {
        const both: string = ctx.credentials.user + ctx.credentials.pin;
        // @ts-expect-error: not a credential field of this connector
        ctx.credentials.password;
        throw new Error(both);
      },
    });
    // A typed connector is a Connector like any other.
    const list: Connector[] = [connector];
    expect(list[0]!.credential_fields.map((f) => f.name)).toEqual(['user', 'pin']);
    const login: (ctx: LoginContext) => unknown = connector.login;
    expect(typeof login).toBe('function');
  });

  it('keeps the descriptor types the same as the engine’s (the SDK has its own copy: it imports nothing)', () => {
    type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
    const code: Same<SdkCodeDescriptor, CoreCodeDescriptor> = true;
    const approval: Same<SdkApprovalDescriptor, CoreApprovalDescriptor> = true;
    expect([code, approval]).toEqual([true, true]);
  });

  it('honours connector errors by shape, and tells engine stops apart', () => {
    expect(classifyFailure({ kind: 'account_locked', message: 'locked by the bank' }, null)).toEqual({
      state: 'failed',
      category: 'account_locked',
      message: 'locked by the bank',
    });
    expect(classifyFailure(Object.assign(new Error(''), { kind: 'bank_unavailable' }), null)).toMatchObject({
      category: 'bank_unavailable',
      message: 'the connector reported bank unavailable',
    });
    expect(classifyFailure({ kind: 'nonsense', message: 'x' }, null)).toMatchObject({ category: 'connector_broken' });
    expect(isConnectorError({ kind: 'code_rejected' })).toBe(true);
    expect(isConnectorError(new Error('plain'))).toBe(false);
    expect(isEngineStop(new AssistanceEnded('expired', 'the request expired'))).toBe(true);
    expect(isEngineStop(new ConnectorTimeout('login', 1000))).toBe(true);
    expect(isEngineStop(new Error('plain'))).toBe(false);
    expect(isEngineStop({ kind: 'bank_unavailable' })).toBe(false);
  });
});
