#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { keysList, keysRevoke, orgsCreate, orgsList, rotateKey, usersResetPassword } from './admin/commands.js';
import { config, fail, organization } from './admin/support.js';
import { scriptsCommand } from './browser/commands.js';
import { connectorsList } from './connectors/list-command.js';
import { ConnectorLoadError } from './connectors/plugins.js';
import { systemClock } from './core/time.js';
import { startFintsBankServer } from './fints-bank/index.js';
import { makeKeysService } from './keys/service.js';
import { createUser } from './orgs/service.js';
import { startSandboxBankServer } from './sandbox-bank/index.js';
import { startServer } from './server.js';
import { openStore, roleRefusal } from './startup.js';

const USAGE = `otpilot: bank logins that pause for one-time codes

Usage:
  otpilot start [--role api|worker|all]
                                     run the API, engine and sandbox bank in one process (all, the
                                     default), or one part of a PostgreSQL deployment: api serves
                                     HTTP, worker runs logins (see docs/deployment.md)
  otpilot migrate                    bring the store's schema up to date
  otpilot keys create --name N --scopes a,b|* [--accounts acc_1,acc_2] [--org org_…] [--json]
                                     (--scopes instance:admin: a key for the organizations API)
  otpilot keys list [--org org_…] [--json]
  otpilot keys revoke <key_…>
  otpilot users create --email E --password P --role admin|operator|viewer [--org org_…] [--json]
  otpilot users reset-password --email E [--password P] [--clear-2fa] [--json]
                                     a new password (printed once unless given), sessions ended
  otpilot orgs create --name N --admin-email E [--admin-password P] [--json]
  otpilot orgs list [--json]
  otpilot master-key rotate          re-encrypt every stored secret with a new master key (every
                                     otpilot process stopped; see docs/configuration.md)
  otpilot connectors list [--json]   the connectors this configuration loads (built in and
                                     OTPILOT_CONNECTORS), with their versions and credential fields
  otpilot scripts push FILE [--json]  store a bank script as a draft (its bank and version are in it)
  otpilot scripts try FILE --account acc_… [--json]
                                     run the script once for one account (a running otpilot
                                     worker does the login; exit 1 when it fails)
  otpilot scripts list BANK [--json]
  otpilot scripts review|promote|deprecate BANK VERSION [--json]
                                     move a script version (see docs/browser-scripts.md)
  otpilot sandbox-bank [--port N] [--slow-ms N]
                                     run the sandbox bank alone (its counters at /sandbox-bank/stats)
  otpilot fints-bank [--port N]      run the local FinTS 3.0 test bank alone (FinTS endpoint
                                     <url>fints, phone pages <url>phone/<user>)
  otpilot bench                      run the benchmarks (prints JSON)

Configuration comes from the environment (PORT, HOST, OTPILOT_DATA_DIR, ...): see docs/configuration.md.`;

async function main(argv: string[]): Promise<void> {
  const [command, sub, ...rest] = argv;
  switch (command) {
    case 'start': {
      const { values } = parseArgs({ args: argv.slice(1), options: { role: { type: 'string', default: 'all' } } });
      const role = values.role;
      if (role !== 'all' && role !== 'api' && role !== 'worker') fail('--role must be api, worker or all');
      const settings = config();
      // Configuration mistakes exit 2, so a supervisor (systemd RestartPreventExitStatus=2) stops retrying.
      const refusal = roleRefusal(role, settings);
      if (refusal) fail(refusal);
      // Signals are handled from the start: one that arrives while the server is still starting
      // stops it as soon as it is up (the default action would kill it without closing anything).
      let stopSignal: string | null = null;
      let server: Awaited<ReturnType<typeof startServer>> | null = null;
      const stop = (signal: string) => {
        stopSignal = signal;
        if (!server) return;
        server.app.log.info({ signal }, 'shutting down');
        server.close().then(
          () => process.exit(0),
          () => process.exit(1),
        );
      };
      process.once('SIGINT', () => stop('SIGINT'));
      process.once('SIGTERM', () => stop('SIGTERM'));
      server = await startServer({ config: settings, role });
      if (stopSignal) stop(stopSignal);
      return;
    }
    case 'migrate': {
      const store = await openStore(config());
      await store.close();
      process.stdout.write('schema up to date\n');
      return;
    }
    case 'keys': {
      if (sub === 'list') return keysList(rest);
      if (sub === 'revoke') return keysRevoke(rest);
      if (sub !== 'create') fail('usage: otpilot keys create|list|revoke (see otpilot help)');
      const { values } = parseArgs({
        args: rest,
        options: {
          name: { type: 'string', default: 'cli' },
          scopes: { type: 'string' },
          accounts: { type: 'string' },
          org: { type: 'string' },
          json: { type: 'boolean', default: false },
        },
      });
      if (!values.scopes) fail('--scopes is required (a comma-separated list, or * for every scope)');
      const store = await openStore(config());
      try {
        const orgId = await organization(store.db, values.org);
        const keys = makeKeysService({ db: store.db, clock: systemClock });
        const accountIds = values.accounts
          ? values.accounts
              .split(',')
              .map((s) => s.trim())
              .filter(Boolean)
          : null;
        const created = await keys.create({
          orgId,
          name: values.name,
          scopes: values.scopes,
          accountIds,
          createdBy: null,
        });
        if (!created.ok)
          fail(`${created.message}${created.details ? ` (${created.details.map((d) => d.message).join('; ')})` : ''}`);
        const { key, ...record } = created.value;
        if (values.json) process.stdout.write(`${JSON.stringify({ ...record, key })}\n`);
        else process.stdout.write(`${key}\n\nshown once; id ${record.id}, scopes ${record.scopes.join(',')}\n`);
      } finally {
        await store.close();
      }
      return;
    }
    case 'users': {
      if (sub === 'reset-password') return usersResetPassword(rest);
      if (sub !== 'create') fail('usage: otpilot users create|reset-password (see otpilot help)');
      const { values } = parseArgs({
        args: rest,
        options: {
          email: { type: 'string' },
          password: { type: 'string' },
          role: { type: 'string', default: 'operator' },
          org: { type: 'string' },
          json: { type: 'boolean', default: false },
        },
      });
      if (!values.email || !/^[^@\s]+@[^@\s]+$/.test(values.email)) fail('--email must be an email address');
      if (!values.password || values.password.length < 10) fail('--password must have at least 10 characters');
      if (!['admin', 'operator', 'viewer'].includes(values.role)) fail('--role must be admin, operator or viewer');
      const store = await openStore(config());
      try {
        const orgId = await organization(store.db, values.org);
        const created = await createUser(store.db, {
          clock: systemClock,
          orgId,
          email: values.email,
          role: values.role as 'admin' | 'operator' | 'viewer',
          password: values.password,
          actor: { type: 'system', id: null },
        });
        if (!created.ok) fail(created.message);
        const { id, email, role } = created.value.row;
        const user = { id, email, role, org_id: orgId };
        process.stdout.write(
          values.json ? `${JSON.stringify(user)}\n` : `created ${id} (${user.email}, ${user.role})\n`,
        );
      } finally {
        await store.close();
      }
      return;
    }
    case 'orgs':
      if (sub === 'create') return orgsCreate(rest);
      if (sub === 'list') return orgsList(rest);
      return fail('usage: otpilot orgs create|list (see otpilot help)');
    case 'connectors':
      if (sub === 'list') return connectorsList(rest);
      return fail('usage: otpilot connectors list [--json]');
    case 'scripts':
      return scriptsCommand(sub, rest);
    case 'master-key':
      if (sub === 'rotate') return rotateKey();
      return fail('usage: otpilot master-key rotate');
    case 'sandbox-bank': {
      const { values } = parseArgs({
        args: argv.slice(1),
        options: {
          port: { type: 'string', default: '4010' },
          host: { type: 'string', default: '127.0.0.1' },
          'slow-ms': { type: 'string', default: '2000' },
        },
      });
      const port = Number(values.port);
      if (!Number.isInteger(port) || port < 0 || port > 65535) fail('--port must be a port number');
      const slowMs = Number(values['slow-ms']);
      if (!Number.isInteger(slowMs) || slowMs < 0) fail('--slow-ms must be a whole number of milliseconds');
      const bank = await startSandboxBankServer({ port, host: values.host, bank: { slowMs } });
      process.stdout.write(`sandbox bank at ${bank.url}\n`);
      const stop = () => void bank.close().then(() => process.exit(0));
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      return;
    }
    case 'fints-bank': {
      const { values } = parseArgs({
        args: argv.slice(1),
        options: { port: { type: 'string', default: '4011' }, host: { type: 'string', default: '127.0.0.1' } },
      });
      const port = Number(values.port);
      if (!Number.isInteger(port) || port < 0 || port > 65535) fail('--port must be a port number');
      const bank = await startFintsBankServer({ port, host: values.host });
      process.stdout.write(`FinTS bank at ${bank.url} (FinTS endpoint ${bank.endpoint}, BLZ ${bank.state.blz})\n`);
      const stop = () => void bank.close().then(() => process.exit(0));
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      return;
    }
    case 'bench': {
      const { runBenchmarks } = await import('./bench/run.js');
      await runBenchmarks();
      return;
    }
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(`${USAGE}\n`);
      return;
    default:
      fail(`unknown command ${command}\n\n${USAGE}`);
  }
}

main(process.argv.slice(2)).catch((error: unknown) => {
  // A bad connector module is a configuration mistake: exit 2, like every other one.
  if (error instanceof ConnectorLoadError) fail(error.message);
  process.stderr.write(`otpilot: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
