import type { AssistanceView } from '../assistance/view.js';
import type { EventEnvelope, EventType } from '../core/events.js';
import type { Bus } from './bus.js';
import { topics } from './topics.js';

/** The payloads of the events parts of the service react to; the others are `unknown` to listeners. */
export interface EventPayloads {
  assistance_required: AssistanceView;
  scrape_succeeded: { session_id: string; movements_new: number };
}

export type EventPayload<T extends EventType> = T extends keyof EventPayloads ? EventPayloads[T] : unknown;

/** An envelope whose `data` is narrowed to its type's payload. */
export type TypedEnvelope<T extends EventType> = Omit<EventEnvelope, 'type' | 'data'> & {
  type: T;
  data: EventPayload<T>;
};

/**
 * Listens for committed events of the given types. Anything else on the `event` topic (another
 * type, or a bare wake-up without an envelope) is ignored, and a listener that throws is logged by
 * `onError` instead of stopping the bus from reaching the listeners after it.
 */
export function onEvent<T extends EventType>(
  bus: Bus,
  types: readonly T[],
  listener: (event: TypedEnvelope<T>) => void,
  onError: (error: unknown) => void = () => {},
): () => void {
  const wanted = new Set<EventType>(types);
  return bus.subscribe(topics.event, (payload) => {
    if (!isEnvelope(payload) || !wanted.has(payload.type)) return;
    try {
      listener(payload as TypedEnvelope<T>);
    } catch (error) {
      onError(error);
    }
  });
}

function isEnvelope(payload: unknown): payload is EventEnvelope {
  return typeof payload === 'object' && payload !== null && typeof (payload as { type?: unknown }).type === 'string';
}
