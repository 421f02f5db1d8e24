import { Cron } from 'croner';

/** A parsed account schedule: `every 20m` style intervals, or a 5/6-field cron expression (UTC). */
export type Schedule = { kind: 'every'; ms: number } | { kind: 'cron'; expression: string };

export type ScheduleParse = { ok: true; schedule: Schedule } | { ok: false; reason: string };

const UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Shortest interval accepted: banks do not like being polled faster, and phones should not ring more. */
export const MIN_INTERVAL_MS = 60_000;

export function parseSchedule(text: string): ScheduleParse {
  const value = text.trim();
  const every = /^every\s+(\d+)\s*([smhd])$/i.exec(value);
  if (every) {
    const ms = Number(every[1]) * (UNITS[every[2]!.toLowerCase()] ?? 0);
    if (ms < MIN_INTERVAL_MS) return { ok: false, reason: 'the interval must be at least 1 minute' };
    if (ms > 31 * UNITS.d!) return { ok: false, reason: 'the interval must be at most 31 days' };
    return { ok: true, schedule: { kind: 'every', ms } };
  }
  try {
    const cron = new Cron(value, { paused: true, timezone: 'UTC' });
    const [first, second] = cron.nextRuns(2);
    if (!first) return { ok: false, reason: 'the cron expression never fires' };
    // Six-field cron can fire every second; the interval floor applies to cron as well.
    if (second && second.getTime() - first.getTime() < MIN_INTERVAL_MS) {
      return { ok: false, reason: 'the schedule must not fire more than once a minute' };
    }
    return { ok: true, schedule: { kind: 'cron', expression: value } };
  } catch {
    return { ok: false, reason: 'expected "every <n>m|h|d" or a cron expression like "0 7 * * *"' };
  }
}

/**
 * The next run after `from`, jittered so that accounts sharing a schedule do not hit a bank in the same
 * second: up to +10 % of the interval (at most 5 minutes). `random` is in [0, 1).
 */
export function nextRunAt(schedule: Schedule, from: number, random: number): number {
  switch (schedule.kind) {
    case 'every':
      return from + schedule.ms + Math.floor(Math.min(schedule.ms * 0.1, 300_000) * random);
    case 'cron': {
      const cron = new Cron(schedule.expression, { paused: true, timezone: 'UTC' });
      const first = cron.nextRun(new Date(from))?.getTime();
      if (first === undefined) return from + UNITS.d!;
      const second = cron.nextRun(new Date(first))?.getTime() ?? first + UNITS.h!;
      return first + Math.floor(Math.min((second - first) * 0.1, 300_000) * random);
    }
    default: {
      const never: never = schedule;
      throw new Error(`unknown schedule ${JSON.stringify(never)}`);
    }
  }
}
