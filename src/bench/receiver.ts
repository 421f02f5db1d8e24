import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parentPort } from 'node:worker_threads';

/**
 * A webhook receiver on its own thread (its own event loop, like a separate service), reporting when
 * each `assistance_required` event arrived, on the clock shared by every thread of the process.
 */
const server = createServer((request, response) => {
  const chunks: Buffer[] = [];
  request.on('data', (chunk: Buffer) => chunks.push(chunk));
  request.on('end', () => {
    const at = performance.timeOrigin + performance.now();
    response.writeHead(204).end();
    const event = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { type: string; account_id: string };
    parentPort!.postMessage({ kind: 'event', type: event.type, account_id: event.account_id, at });
  });
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () =>
  parentPort!.postMessage({ kind: 'ready', port: (server.address() as AddressInfo).port }),
);
parentPort!.on('message', (message: { kind: string }) => {
  if (message.kind === 'stop') server.close(() => process.exit(0));
});
