import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Received {
  headers: IncomingHttpHeaders;
  body: string;
  json: any;
  status: number;
}

/** A local webhook receiver: records every request and answers with `respond` (default 200). */
export interface Receiver {
  url: string;
  port: number;
  received: Received[];
  respond: (request: Received, index: number) => number;
  /**
   * Resolves once `count` requests have arrived. Bounded by progress, not by total time: it gives up
   * only when nothing arrived for `timeoutMs`, so a busy machine that delivers slowly still passes.
   */
  waitFor(count: number, timeoutMs?: number): Promise<Received[]>;
  close(): Promise<void>;
}

export async function startReceiver(port = 0): Promise<Receiver> {
  const waiters: (() => void)[] = [];
  const receiver: Receiver = {
    url: '',
    port: 0,
    received: [],
    respond: () => 200,
    async waitFor(count, timeoutMs = 15_000) {
      let deadline = Date.now() + timeoutMs;
      let seen = receiver.received.length;
      while (receiver.received.length < count) {
        if (receiver.received.length > seen) {
          seen = receiver.received.length;
          deadline = Date.now() + timeoutMs;
        }
        const remaining = deadline - Date.now();
        if (remaining <= 0) throw new Error(`expected ${count} webhook requests, got ${receiver.received.length}`);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, remaining);
          waiters.push(() => {
            clearTimeout(timer);
            resolve();
          });
        });
      }
      return receiver.received;
    },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
  const server: Server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => {
      body += chunk;
    });
    req.on('end', () => {
      const entry: Received = { headers: req.headers, body, json: body ? JSON.parse(body) : null, status: 0 };
      entry.status = receiver.respond(entry, receiver.received.length);
      receiver.received.push(entry);
      res.writeHead(entry.status, { 'content-type': 'text/plain' }).end(entry.status < 300 ? 'ok' : 'nope');
      for (const wake of waiters.splice(0)) wake();
    });
  });
  server.keepAliveTimeout = 1000;
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  receiver.port = (server.address() as AddressInfo).port;
  receiver.url = `http://127.0.0.1:${receiver.port}/hook`;
  return receiver;
}

/** A port nothing listens on (bound once, then released). */
export async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const port = (probe.address() as AddressInfo).port;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}
