import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { answerClockPings } from './clock.js';
import { absoluteNow } from './stats.js';

/**
 * A webhook receiver in a child process of the bench (`fork`; its own process, like the integrator's
 * service), reporting when each event arrived, on its own clock (the parent corrects for the offset).
 */
if (process.send) {
  const send = (message: object) => process.send!(message);
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const at = absoluteNow();
      response.writeHead(204).end();
      const event = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { type: string; account_id: string };
      send({ kind: 'event', type: event.type, account_id: event.account_id, at });
    });
  });
  server.keepAliveTimeout = 60_000;
  answerClockPings();
  process.on('message', (message: { kind: string }) => {
    if (message.kind === 'stop') {
      server.closeAllConnections();
      server.close(() => process.exit(0));
    }
  });
  server.listen(0, '127.0.0.1', () => send({ kind: 'ready', port: (server.address() as AddressInfo).port }));
}
