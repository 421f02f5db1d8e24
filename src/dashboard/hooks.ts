import { useCallback, useEffect, useRef, useState } from 'react';
import { get } from './api.js';

export interface Resource<T> {
  data: T | undefined;
  error: unknown;
  loading: boolean;
  /** Re-reads in place: the old data stays on screen until the new arrives (no layout jumps). */
  reload: () => void;
}

/**
 * GETs `path` (null: nothing yet) and keeps the answer. Reloads coalesce: while one read is in
 * flight, any number of reload calls (a burst of live events) cause exactly one more read after it.
 */
export function useResource<T>(path: string | null): Resource<T> {
  const [state, setState] = useState<{ data: T | undefined; error: unknown; loading: boolean }>({
    data: undefined,
    error: undefined,
    loading: path !== null,
  });
  const generation = useRef(0);
  const inFlight = useRef<string | null>(null);
  const queued = useRef(false);
  const reload = useCallback(() => {
    if (path === null) return;
    if (inFlight.current === path) {
      queued.current = true;
      return;
    }
    inFlight.current = path;
    queued.current = false;
    const mine = ++generation.current;
    setState((s) => (s.loading ? s : { ...s, loading: true }));
    get<T>(path)
      .then(
        (data) => mine === generation.current && setState({ data, error: undefined, loading: false }),
        (error: unknown) => mine === generation.current && setState((s) => ({ ...s, error, loading: false })),
      )
      .finally(() => {
        if (inFlight.current === path) inFlight.current = null;
        if (queued.current && mine === generation.current) reload();
      });
  }, [path]);
  useEffect(reload, [reload]);
  return { ...state, reload };
}

/** The current time, ticking every `everyMs` (for countdowns). */
export function useNow(everyMs = 1000): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), everyMs);
    return () => clearInterval(timer);
  }, [everyMs]);
  return now;
}

/** Told to every `useStoredFlag` of a key when one of them changes it (the settings page and the prompt). */
const FLAG_CHANGED = 'otpilot:flag';

/** A value kept in localStorage (the operator's alert preferences), the same in every component that reads it. */
export function useStoredFlag(key: string, initial: boolean): [boolean, (value: boolean) => void] {
  const read = useCallback(() => {
    const stored = localStorage.getItem(key);
    return stored === null ? initial : stored === 'true';
  }, [key, initial]);
  const [value, setValue] = useState(read);
  useEffect(() => {
    const sync = () => setValue(read());
    window.addEventListener(FLAG_CHANGED, sync);
    // Other tabs of the dashboard change it too.
    window.addEventListener('storage', sync);
    return () => {
      window.removeEventListener(FLAG_CHANGED, sync);
      window.removeEventListener('storage', sync);
    };
  }, [read]);
  const set = useCallback(
    (next: boolean) => {
      localStorage.setItem(key, String(next));
      window.dispatchEvent(new Event(FLAG_CHANGED));
    },
    [key],
  );
  return [value, set];
}

/** A button's action: runs it, keeps its error or its success note for the page to show. */
export function useAction(): {
  error: unknown;
  notice: string | null;
  run: (action: () => Promise<unknown>, done: string) => Promise<void>;
} {
  const [error, setError] = useState<unknown>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const run = useCallback(async (action: () => Promise<unknown>, done: string) => {
    setError(null);
    setNotice(null);
    try {
      await action();
      setNotice(done);
    } catch (failure) {
      setError(failure);
    }
  }, []);
  return { error, notice, run };
}

/** Re-reads resources whenever `version` moves on (a live event said something changed); not on the first render. */
export function useReloadOn(version: number, ...reloads: (() => void)[]): void {
  const first = useRef(version);
  const latest = useRef(reloads);
  latest.current = reloads;
  useEffect(() => {
    if (version === first.current) return;
    for (const reload of latest.current) reload();
  }, [version]);
}
