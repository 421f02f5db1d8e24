import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { Agent, request } from 'undici';
import { isPrivateAddress } from './url-safety.js';

/** What one HTTP attempt produced. `status` is null when no response came (refused, timeout, DNS). */
export interface AttemptResult {
  status: number | null;
  durationMs: number;
  /** First 1 KiB of the response body. */
  body: string | null;
  error: string | null;
}

export interface Sender {
  post(url: string, headers: Record<string, string>, body: string): Promise<AttemptResult>;
  close(): Promise<void>;
}

const RESPONSE_KEEP = 1024;

/**
 * The webhook HTTP client: connect timeout 5 s, whole request 15 s, response body truncated to 1 KiB,
 * and every connection's resolved address checked against private ranges (unless allowed), so a DNS
 * answer that changed since the URL was saved cannot reach inside.
 */
export function makeSender(options: {
  allowPrivate: boolean;
  connectTimeoutMs?: number;
  totalTimeoutMs?: number;
}): Sender {
  const connectTimeout = options.connectTimeoutMs ?? 5_000;
  const totalTimeout = options.totalTimeoutMs ?? 15_000;
  const agent = new Agent({
    connect: {
      timeout: connectTimeout,
      lookup(hostname, lookupOptions, callback) {
        dnsLookup(hostname, { ...lookupOptions, all: true }, (error, addresses: LookupAddress[]) => {
          if (error) return callback(error, '', 0);
          const allowed = options.allowPrivate ? addresses : addresses.filter((a) => !isPrivateAddress(a.address));
          const first = allowed[0];
          if (!first) return callback(new Error('the webhook host resolves only to private addresses'), '', 0);
          if (lookupOptions.all) return (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, allowed);
          callback(null, first.address, first.family);
        });
      },
    },
    headersTimeout: totalTimeout,
    bodyTimeout: totalTimeout,
  });

  return {
    async post(url, headers, body) {
      const started = performance.now();
      try {
        if (!options.allowPrivate) {
          const host = new URL(url).hostname.replace(/^\[|\]$/g, '');
          if (/^[\d.]+$|:/.test(host) && isPrivateAddress(host))
            throw new Error('the webhook URL points to a private address');
        }
        const response = await request(url, {
          method: 'POST',
          headers,
          body,
          dispatcher: agent,
          signal: AbortSignal.timeout(totalTimeout),
        });
        let text = '';
        for await (const chunk of response.body) {
          text += Buffer.from(chunk as Uint8Array).toString('utf8');
          if (text.length >= RESPONSE_KEEP) {
            response.body.destroy();
            break;
          }
        }
        return {
          status: response.statusCode,
          durationMs: Math.round(performance.now() - started),
          body: text.slice(0, RESPONSE_KEEP),
          error: null,
        };
      } catch (error) {
        const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
        return {
          status: null,
          durationMs: Math.round(performance.now() - started),
          body: null,
          error: message.slice(0, 300),
        };
      }
    },
    close: () => agent.close(),
  };
}
