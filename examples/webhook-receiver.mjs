#!/usr/bin/env node
// A minimal otpilot webhook receiver: verifies every request with the Standard Webhooks scheme and
// prints the event. See docs/webhooks.md.
//
//   WEBHOOK_SECRET=whsec_… node examples/webhook-receiver.mjs [port]
//
// The port comes from the first argument, else $PORT, else 9000 (0 picks a free one). It listens on
// $HOST (default 127.0.0.1). Answers: 204 verified, 400 missing or bad signature (or a timestamp
// more than 5 minutes off), 405 not a POST, 413 body over 1 MiB.
// Only dependency: the `standardwebhooks` npm package (`npm install standardwebhooks`).

import { createServer } from 'node:http';
import { Webhook } from 'standardwebhooks';

const secret = process.env.WEBHOOK_SECRET;
if (!secret?.startsWith('whsec_')) {
  console.error('set WEBHOOK_SECRET to the whsec_… secret of the endpoint (or of the account)');
  process.exit(2);
}
const port = Number(process.argv[2] ?? process.env.PORT ?? 9000);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`not a port: ${process.argv[2] ?? process.env.PORT}`);
  process.exit(2);
}
const host = process.env.HOST || '127.0.0.1';
const MAX_BODY = 1024 * 1024;

const webhook = new Webhook(secret);
// Retries carry the same webhook-id: remember recent ones so an event is acted on once (a real
// receiver keeps these in its database, next to the effect of the event).
const seen = new Set();

const server = createServer((req, res) => {
  if (req.method !== 'POST') {
    res.writeHead(405, { allow: 'POST' }).end();
    return;
  }
  const chunks = [];
  let size = 0;
  req.on('data', (chunk) => {
    size += chunk.length;
    if (size <= MAX_BODY) chunks.push(chunk);
  });
  req.on('end', () => {
    if (size > MAX_BODY) {
      res.writeHead(413).end();
      return;
    }
    // Verify the raw body exactly as received: re-serialised JSON would not match the signature.
    const body = Buffer.concat(chunks).toString('utf8');
    const headers = {
      'webhook-id': String(req.headers['webhook-id'] ?? ''),
      'webhook-timestamp': String(req.headers['webhook-timestamp'] ?? ''),
      'webhook-signature': String(req.headers['webhook-signature'] ?? ''),
    };
    let event;
    try {
      event = webhook.verify(body, headers);
    } catch (error) {
      console.log(`refused ${headers['webhook-id'] || '(no id)'}: ${error.message}`);
      res.writeHead(400, { 'content-type': 'text/plain' }).end('invalid signature\n');
      return;
    }
    const id = headers['webhook-id'];
    const repeat = seen.has(id);
    if (!repeat) {
      seen.add(id);
      if (seen.size > 10_000) seen.delete(seen.values().next().value);
    }
    console.log(`verified ${event.type} ${id} account=${event.account_id ?? '-'}${repeat ? ' (repeat, ignored)' : ''}`);
    // Answer fast (otpilot gives up after 15 s); do slow work after answering.
    res.writeHead(204).end();
  });
});

server.listen(port, host, () => {
  const { port: actual } = server.address();
  console.log(`webhook receiver listening on http://${host.includes(':') ? `[${host}]` : host}:${actual}/`);
});
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => server.close(() => process.exit(0)));
