/** A daily window (local wall-clock time in `time_zone`) in which no scheduled login starts. */
export interface QuietHours {
  /** "HH:MM", inclusive. */
  start: string;
  /** "HH:MM", exclusive; before `start` means the window crosses midnight. */
  end: string;
  /** IANA time zone, e.g. "Europe/Amsterdam". */
  time_zone: string;
}

export type QuietHoursCheck = { ok: true; value: QuietHours } | { ok: false; reason: string };

const HHMM = /^([01]\d|2[0-3]):([0-5]\d)$/;

const minutesOf = (hhmm: string): number => {
  const [h, m] = hhmm.split(':').map(Number) as [number, number];
  return h * 60 + m;
};

export function checkQuietHours(value: QuietHours): QuietHoursCheck {
  if (!HHMM.test(value.start) || !HHMM.test(value.end))
    return { ok: false, reason: 'start and end must be HH:MM (24-hour)' };
  if (value.start === value.end) return { ok: false, reason: 'start and end must differ' };
  try {
    new Intl.DateTimeFormat('en-GB', { timeZone: value.time_zone });
  } catch {
    return { ok: false, reason: `unknown time zone ${value.time_zone}` };
  }
  return { ok: true, value };
}

/** Minutes since local midnight at `now` in the zone. */
function localMinutes(now: number, timeZone: string): number {
  const parts = new Intl.DateTimeFormat('en-GB', {
    timeZone,
    hour: '2-digit',
    minute: '2-digit',
    hourCycle: 'h23',
  }).formatToParts(now);
  const hour = Number(parts.find((p) => p.type === 'hour')?.value ?? 0);
  const minute = Number(parts.find((p) => p.type === 'minute')?.value ?? 0);
  return hour * 60 + minute;
}

/**
 * When the quiet window that contains `now` ends (ms), or null when `now` is outside it. Computed
 * in wall-clock minutes, so a DST change inside the window shifts its end by that hour at most.
 */
export function quietUntil(quiet: QuietHours, now: number): number | null {
  const local = localMinutes(now, quiet.time_zone);
  const start = minutesOf(quiet.start);
  const end = minutesOf(quiet.end);
  const inside = start < end ? local >= start && local < end : local >= start || local < end;
  if (!inside) return null;
  const minutesLeft = (end - local + 1440) % 1440;
  const startOfMinute = now - (now % 60_000);
  return startOfMinute + minutesLeft * 60_000;
}
