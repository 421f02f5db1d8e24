import type { Worker } from 'node:worker_threads';

/** An error as the worker describes it; `evidence` is attached when a script step failed. */
export interface WorkerError {
  name: string;
  message: string;
  /** A ConnectorErrorKind when the script used `ctx.fail(kind, …)`; anything else is checked by the caller. */
  kind: string | null;
  evidence?: RawEvidence | null;
}

/** What the worker captured on a failure, before redaction. */
export interface RawEvidence {
  url: string;
  html: string | null;
  /** PNG, base64. */
  screenshot: string | null;
  console_errors: string[];
}

/** Thrown on the parent's side when a worker request failed. */
export class ScriptFailure extends Error {
  constructor(readonly described: WorkerError) {
    super(described.message);
    this.name = 'ScriptFailure';
  }
}

type Handler = (payload: unknown) => Promise<unknown>;
type Message =
  | { kind: 'req'; id: number; type: string; payload: unknown }
  | { kind: 'res'; id: number; ok: boolean; value?: unknown; error?: WorkerError }
  | { kind: 'event'; type: string; [key: string]: unknown };

/** The parent's end of the message interface with one script worker (host-source.ts is the other end). */
export interface Rpc {
  request(type: string, payload?: unknown): Promise<unknown>;
  /** Fails every open request (the worker died or was stopped). */
  failAll(error: Error): void;
}

export function makeRpc(
  worker: Worker,
  handlers: Record<string, Handler>,
  onEvent: (event: { type: string; [key: string]: unknown }) => void,
): Rpc {
  let seq = 0;
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  worker.on('message', (message: Message) => {
    if (message.kind === 'event') return onEvent(message);
    if (message.kind === 'res') {
      const waiter = pending.get(message.id);
      if (!waiter) return;
      pending.delete(message.id);
      if (message.ok) waiter.resolve(message.value);
      else waiter.reject(new ScriptFailure(message.error ?? { name: 'Error', message: 'failed', kind: null }));
      return;
    }
    const handler = handlers[message.type];
    const answer = handler ? handler(message.payload) : Promise.reject(new Error(`unknown request ${message.type}`));
    answer.then(
      (value) => worker.postMessage({ kind: 'res', id: message.id, ok: true, value }),
      (error: unknown) =>
        worker.postMessage({
          kind: 'res',
          id: message.id,
          ok: false,
          error: {
            name: error instanceof Error ? error.name : 'Error',
            message: error instanceof Error ? error.message : String(error),
            kind: typeof (error as { kind?: unknown })?.kind === 'string' ? (error as { kind: string }).kind : null,
          },
        }),
    );
  });
  return {
    request(type, payload) {
      const id = ++seq;
      return new Promise((resolve, reject) => {
        pending.set(id, { resolve, reject });
        worker.postMessage({ kind: 'req', id, type, payload });
      });
    },
    failAll(error) {
      for (const waiter of pending.values()) waiter.reject(error);
      pending.clear();
    },
  };
}
