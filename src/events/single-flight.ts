/**
 * Runs `task` one call at a time. A call made while a run is under way gets one more run after it
 * (calls meanwhile share that one run), so nothing asked for during a run is missed and runs never
 * overlap. With `whenBusy: 'skip'` such a call shares the current run instead (periodic ticks).
 */
export function singleFlight<T>(
  task: () => Promise<T>,
  options: { whenBusy?: 'again' | 'skip' } = {},
): () => Promise<T> {
  let running: Promise<T> | null = null;
  let queued: Promise<T> | null = null;
  const call = (): Promise<T> => {
    if (!running) {
      running = task().finally(() => {
        running = null;
      });
      return running;
    }
    if (options.whenBusy === 'skip') return running;
    queued ??= running
      .catch(() => undefined)
      .then(() => {
        queued = null;
        return call();
      });
    return queued;
  };
  return call;
}
