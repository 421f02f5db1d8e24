/**
 * The retry schedule (docs/webhooks.md): the first attempt at once, then after 5 s, 5 min, 30 min, 2 h, 5 h,
 * 10 h and 10 h (eight attempts over about 27.6 hours), each delay ±20 % jitter; then dead letter.
 */
export const RETRY_DELAYS_MS = [5_000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000, 36_000_000] as const;

/** Attempts in all, the first included. */
export const MAX_ATTEMPTS = RETRY_DELAYS_MS.length + 1;

/** An endpoint failing without a break for this long is disabled (5 days). */
export const DISABLE_AFTER_MS = 5 * 86_400_000;

/**
 * When to try again after `attempts` failed attempts, or null when the delivery is dead.
 * `random` is in [0, 1).
 */
export function nextAttemptAt(attempts: number, now: number, random: number): number | null {
  const delay = RETRY_DELAYS_MS[attempts - 1];
  if (delay === undefined) return null;
  return now + Math.round(delay * (0.8 + 0.4 * random));
}
