import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { checkCode, normalizeCode } from '../src/core/descriptor.js';
import { isId, newId } from '../src/core/ids.js';
import { nextRunAt, parseSchedule } from '../src/core/schedule.js';
import { parseScopes, SCOPES } from '../src/core/scopes.js';
import { generateApiKey, hashSecret, parseApiKey } from '../src/security/api-keys.js';
import { makeCipher } from '../src/security/cipher.js';
import { loadMasterKey } from '../src/security/master-key.js';
import { hashPassword, verifyPassword } from '../src/security/passwords.js';

describe('codes against descriptors', () => {
  it('normalises spaces and dashes', () => {
    expect(normalizeCode(' 123-456 ')).toBe('123456');
  });
  it('checks type, length and the 32-character bound', () => {
    expect(checkCode('123456', { length: 6, type: 'numeric' })).toEqual({ ok: true, code: '123456' });
    expect(checkCode('12345a', { length: 6, type: 'numeric' }).ok).toBe(false);
    expect(checkCode('12345', { length: 6, type: 'numeric' }).ok).toBe(false);
    expect(checkCode('AB12cd34', { length: 8, type: 'alphanumeric' }).ok).toBe(true);
    expect(checkCode('AB12-cd3!', { length: null, type: 'alphanumeric' }).ok).toBe(false);
    expect(checkCode('é12345', { length: null, type: 'alphanumeric' }).ok).toBe(false);
    expect(checkCode('1'.repeat(33), { length: null, type: 'numeric' }).ok).toBe(false);
    expect(checkCode(' - ', { length: null, type: 'numeric' }).ok).toBe(false);
  });
});

describe('ids', () => {
  it('are prefixed, unique and sort by creation even within one millisecond', () => {
    const ids = Array.from({ length: 1000 }, () => newId('acc', 1_700_000_000_000));
    expect(new Set(ids).size).toBe(1000);
    expect([...ids].sort()).toEqual(ids);
    expect(ids.every((id) => isId('acc', id))).toBe(true);
    // A clock that steps back never makes a later id sort first.
    const before = newId('ses', Date.now() + 60_000);
    expect(newId('ses', Date.now()) > before).toBe(true);
  });
});

describe('schedules', () => {
  it('parse intervals and cron, and refuse the rest', () => {
    expect(parseSchedule('every 20m')).toEqual({ ok: true, schedule: { kind: 'every', ms: 1_200_000 } });
    expect(parseSchedule('0 7 * * *')).toEqual({ ok: true, schedule: { kind: 'cron', expression: '0 7 * * *' } });
    expect(parseSchedule('every 30s').ok).toBe(false);
    // Six-field cron may name seconds; the one-minute floor holds for it too.
    expect(parseSchedule('*/5 * * * * *').ok).toBe(false);
    expect(parseSchedule('0 */5 * * * *').ok).toBe(true);
    expect(parseSchedule('whenever').ok).toBe(false);
  });
  it('jitter by at most 10 % of the interval', () => {
    const every = { kind: 'every', ms: 600_000 } as const;
    expect(nextRunAt(every, 0, 0)).toBe(600_000);
    expect(nextRunAt(every, 0, 0.999)).toBeLessThan(660_000);
    const cron = { kind: 'cron', expression: '0 7 * * *' } as const;
    const from = Date.parse('2026-01-01T08:00:00Z');
    expect(nextRunAt(cron, from, 0)).toBe(Date.parse('2026-01-02T07:00:00Z'));
    expect(nextRunAt(cron, from, 0.999) - Date.parse('2026-01-02T07:00:00Z')).toBeLessThanOrEqual(300_000);
  });
});

describe('secrets', () => {
  it('encrypt with AES-256-GCM bound to their context', () => {
    const cipher = makeCipher(Buffer.alloc(32, 7));
    const envelope = cipher.encrypt('hunter2', 'acc_1:credentials');
    expect(envelope).not.toContain('hunter2');
    expect(cipher.encrypt('hunter2', 'acc_1:credentials')).not.toBe(envelope);
    expect(cipher.decrypt(envelope, 'acc_1:credentials')).toBe('hunter2');
    expect(() => cipher.decrypt(envelope, 'acc_2:credentials')).toThrow();
    expect(() => makeCipher(Buffer.alloc(32, 8)).decrypt(envelope, 'acc_1:credentials')).toThrow();
  });
  it('create a 0600 master key file in embedded mode, and require the variable with PostgreSQL', () => {
    const dir = mkdtempSync(join(tmpdir(), 'otpilot-key-'));
    try {
      const created = loadMasterKey({ envValue: undefined, dataDir: dir, embedded: true });
      expect(created).toMatchObject({ ok: true, source: 'created' });
      expect(statSync(join(dir, 'master.key')).mode & 0o777).toBe(0o600);
      const again = loadMasterKey({ envValue: undefined, dataDir: dir, embedded: true });
      expect(again.ok && created.ok && again.key.equals(created.key)).toBe(true);
      expect(loadMasterKey({ envValue: undefined, dataDir: dir, embedded: false }).ok).toBe(false);
      expect(loadMasterKey({ envValue: 'short', dataDir: dir, embedded: true }).ok).toBe(false);
      expect(loadMasterKey({ envValue: 'ab'.repeat(32), dataDir: dir, embedded: false })).toMatchObject({
        ok: true,
        source: 'env',
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
  it('API keys have the documented shape and are stored as hashes', () => {
    const key = generateApiKey();
    expect(key.key).toMatch(/^otpk_[0-9A-Za-z]{8}_[0-9A-Za-z]{40}$/);
    const parsed = parseApiKey(key.key)!;
    expect(parsed.prefix).toBe(key.prefix);
    expect(hashSecret(parsed.secret)).toBe(key.secretHash);
    expect(parseApiKey('otpk_short_x')).toBeNull();
  });
  it('passwords hash with scrypt', async () => {
    const hash = await hashPassword('correct horse');
    expect(hash.startsWith('scrypt$')).toBe(true);
    expect(await verifyPassword('correct horse', hash)).toBe(true);
    expect(await verifyPassword('wrong horse', hash)).toBe(false);
  });
});

describe('scopes and config', () => {
  it('parse scope lists', () => {
    expect(parseScopes('*').scopes).toEqual([...SCOPES]);
    expect(parseScopes('otp:write, status:read,otp:write')).toEqual({
      scopes: ['otp:write', 'status:read'],
      unknown: [],
    });
    expect(parseScopes('otp:write,nope').unknown).toEqual(['nope']);
  });
  it('validate the environment with clear messages', () => {
    expect(loadConfig({})).toMatchObject({ ok: true, config: { port: 3000, host: '127.0.0.1', sandbox: true } });
    const bad = loadConfig({ PORT: 'x', OTPILOT_SANDBOX: 'maybe', LOG_LEVEL: 'loud' });
    expect(bad.ok).toBe(false);
    expect(!bad.ok && bad.errors).toHaveLength(3);
  });
});
