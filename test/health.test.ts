import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { FAILURES_TO_DOWN, makeDatabaseHealth } from '../src/store/health.js';

/**
 * The database health check on a loaded machine: timers are the platform's, faked here so that a
 * probe can answer "late" (after its timeout has passed) deterministically.
 */

/** A probe whose answers the test gives, one pending promise per call. */
function scriptedProbe() {
  const calls: { resolve(): void; reject(error: Error): void }[] = [];
  return {
    calls,
    probe: () =>
      new Promise<void>((resolve, reject) => {
        calls.push({ resolve, reject });
      }),
  };
}

const INTERVAL = 1000;
const TIMEOUT = 5000;

beforeEach(() => {
  vi.useFakeTimers();
});

afterEach(() => {
  vi.useRealTimers();
});

function start(probe: () => Promise<void>) {
  const health = makeDatabaseHealth({
    probe,
    log: pino({ level: 'silent' }),
    intervalMs: INTERVAL,
    timeoutMs: TIMEOUT,
  });
  health.start();
  return health;
}

describe('database health', () => {
  it('a probe that answers after its timeout does not mark the database down', async () => {
    const { calls, probe } = scriptedProbe();
    const health = start(probe);
    await vi.advanceTimersByTimeAsync(INTERVAL);
    expect(calls).toHaveLength(1);
    // The loop stalls past the timeout: the answer comes late, but it comes.
    await vi.advanceTimersByTimeAsync(TIMEOUT + INTERVAL);
    expect(health.up()).toBe(true);
    calls[0]!.resolve();
    await vi.advanceTimersByTimeAsync(INTERVAL);
    expect(health.up()).toBe(true);
    expect(calls).toHaveLength(2);
    // The driver's own timer fires before the answer is read (PostgreSQL's "Query read timeout"):
    // one such failure is not an outage either.
    calls[1]!.reject(new Error('Query read timeout'));
    await vi.advanceTimersByTimeAsync(INTERVAL);
    expect(health.up()).toBe(true);
    calls[2]!.resolve();
    await vi.advanceTimersByTimeAsync(0);
    expect(health.up()).toBe(true);
    health.stop();
  });

  it(`one or two failed probes are not an outage; ${FAILURES_TO_DOWN} in a row are, and one answer ends it`, async () => {
    const { calls, probe } = scriptedProbe();
    const health = start(probe);
    for (let i = 0; i < FAILURES_TO_DOWN - 1; i++) {
      await vi.advanceTimersByTimeAsync(INTERVAL);
      calls.at(-1)!.reject(new Error('connection refused'));
      await vi.advanceTimersByTimeAsync(0);
      expect(health.up()).toBe(true);
    }
    // An answer in between starts the count again.
    await vi.advanceTimersByTimeAsync(INTERVAL);
    calls.at(-1)!.resolve();
    for (let i = 0; i < FAILURES_TO_DOWN; i++) {
      await vi.advanceTimersByTimeAsync(INTERVAL);
      expect(health.up()).toBe(true);
      calls.at(-1)!.reject(new Error('connection refused'));
      await vi.advanceTimersByTimeAsync(0);
    }
    expect(health.up()).toBe(false);
    await vi.advanceTimersByTimeAsync(INTERVAL);
    calls.at(-1)!.resolve();
    await vi.advanceTimersByTimeAsync(0);
    expect(health.up()).toBe(true);
    health.stop();
  });

  it(`a probe that never answers marks the database down after ${FAILURES_TO_DOWN} timeouts`, async () => {
    const { calls, probe } = scriptedProbe();
    const health = start(probe);
    await vi.advanceTimersByTimeAsync(INTERVAL);
    await vi.advanceTimersByTimeAsync(TIMEOUT * (FAILURES_TO_DOWN - 1) + INTERVAL);
    expect(health.up()).toBe(true);
    await vi.advanceTimersByTimeAsync(TIMEOUT);
    expect(health.up()).toBe(false);
    expect(calls).toHaveLength(1);
    calls[0]!.resolve();
    await vi.advanceTimersByTimeAsync(0);
    expect(health.up()).toBe(true);
    health.stop();
  });
});
