import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FintsBankServer, startFintsBankServer } from '../src/fints-bank/index.js';
import { FINTS_PIN } from '../src/fints-bank/users.js';

const run = promisify(execFile);

/** AqBanking's command line tool (Debian `aqbanking-tools`), installed by .ci/run. */
function findTool(): string | null {
  for (const dir of (process.env.PATH ?? '').split(':')) {
    try {
      if (readdirSync(dir).includes('aqhbci-tool4')) return join(dir, 'aqhbci-tool4');
    } catch {
      // not a readable folder
    }
  }
  return null;
}

const tool = findTool();
let bank: FintsBankServer;
let dir: string;

beforeAll(async () => {
  bank = await startFintsBankServer({ port: 0, host: '127.0.0.1' });
  dir = mkdtempSync(join(tmpdir(), 'otpilot-aqbanking-'));
});
afterAll(async () => {
  await bank?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

// An independent FinTS client that nobody here wrote talks to the local FinTS bank.
describe.runIf(tool !== null)('AqBanking against the local FinTS bank', () => {
  it('registers a PIN/TAN user and fetches the bank parameters and a system id (getsysid)', async () => {
    const cfg = join(dir, 'cfg');
    const pinFile = join(dir, 'pins');
    writeFileSync(pinFile, `PIN_12345678_notan = "${FINTS_PIN}"\n`, { mode: 0o600 });
    const aq = (args: string[]) => run(tool as string, ['-D', cfg, ...args], { timeout: 60_000 });
    await aq([
      'adduser',
      '-t',
      'pintan',
      '-N',
      'Test',
      '-b',
      '12345678',
      '-u',
      'notan',
      '-s',
      bank.endpoint,
      '--hbciversion=300',
    ]);
    await aq(['-P', pinFile, '-n', 'getsysid', '-u', '1']);
    const users = join(cfg, 'settings6', 'users');
    const [file] = readdirSync(users);
    const conf = readFileSync(join(users, file as string), 'latin1');
    const systemId = /systemId="([^"]+)"/.exec(conf)?.[1];
    expect(systemId).toBeDefined();
    expect(bank.state.systemIds.has(systemId as string)).toBe(true);
    // AqBanking ended its dialog: the bank holds none open.
    expect(bank.state.dialogs.size).toBe(0);
  });
});
