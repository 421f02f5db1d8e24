import { createContext, type ReactNode, useContext, useEffect, useRef, useState } from 'react';
import { EVENT_TYPES } from '../core/events.js';

/** An event from the organization's stream (the envelope webhooks carry), or the stream (re)opening. */
export type LiveEvent =
  | { type: (typeof EVENT_TYPES)[number]; account_id: string | null; data: unknown; id: string }
  | { type: 'connected'; account_id: null; data: null; id: null };
type Listener = (event: LiveEvent) => void;

interface Live {
  subscribe(listener: Listener): () => void;
  /** False while the stream is down (the browser reconnects by itself and resumes from the last id). */
  connected: boolean;
}

const LiveContext = createContext<Live>({ subscribe: () => () => {}, connected: false });

/** One EventSource on `/events` for the whole app; pages and the code prompt subscribe to it. */
export function LiveProvider({ children }: { children: ReactNode }) {
  const listeners = useRef(new Set<Listener>());
  const [connected, setConnected] = useState(false);
  const [live] = useState<Omit<Live, 'connected'>>(() => ({
    subscribe(listener) {
      listeners.current.add(listener);
      return () => listeners.current.delete(listener);
    },
  }));

  useEffect(() => {
    const source = new EventSource('/events');
    const dispatch = (event: LiveEvent) => {
      for (const listener of listeners.current) listener(event);
    };
    for (const type of EVENT_TYPES) {
      source.addEventListener(type, (message) => {
        const envelope = JSON.parse((message as MessageEvent<string>).data) as LiveEvent;
        dispatch(envelope);
      });
    }
    // Anything missed while the stream was down is re-read by whoever listens for `connected`.
    source.onopen = () => {
      setConnected(true);
      dispatch({ type: 'connected', account_id: null, data: null, id: null });
    };
    source.onerror = () => setConnected(false);
    return () => source.close();
  }, []);

  return <LiveContext.Provider value={{ ...live, connected }}>{children}</LiveContext.Provider>;
}

export const useLive = () => useContext(LiveContext);

/** Calls `listener` for every live event; the latest listener is used without resubscribing. */
export function useLiveEvents(listener: Listener): void {
  const { subscribe } = useLive();
  const latest = useRef(listener);
  latest.current = listener;
  useEffect(() => subscribe((event) => latest.current(event)), [subscribe]);
}
