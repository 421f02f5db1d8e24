import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { Agent, request } from 'undici';
import { newId } from '../core/ids.js';
import { signatureHeaders } from '../webhooks/signing.js';
import { isPrivateAddress } from '../webhooks/url-safety.js';

export type SourceList = { ok: true; payments: unknown[] } | { ok: false; error: string };

/** Reads a pull source's list of pending orders. */
export interface SourceFetcher {
  /** `signal` aborts the request (shutdown). */
  fetchList(url: string, accountId: string, signal?: AbortSignal): Promise<SourceList>;
  close(): Promise<void>;
}

/** Largest list body read, bytes. */
const MAX_BODY = 5 * 1024 * 1024;

/**
 * GETs a source URL signed like a webhook (Standard Webhooks headers over an empty body, with the
 * account's signing secret), with the webhooks' address rules: every connection's resolved address is
 * checked against private ranges unless allowed. Expects `{ "payments": [...] }` (or a bare array).
 */
export function makeSourceFetcher(options: {
  allowPrivate: boolean;
  /** The account's signing secret (created on first use). */
  secretOf: (accountId: string) => Promise<string>;
  clock: () => number;
  timeoutMs?: number;
}): SourceFetcher {
  const timeout = options.timeoutMs ?? 15_000;
  const agent = new Agent({
    connect: {
      timeout: 5_000,
      lookup(hostname, lookupOptions, callback) {
        dnsLookup(hostname, { ...lookupOptions, all: true }, (error, addresses: LookupAddress[]) => {
          if (error) return callback(error, '', 0);
          const allowed = options.allowPrivate ? addresses : addresses.filter((a) => !isPrivateAddress(a.address));
          const first = allowed[0];
          if (!first) return callback(new Error('the source host resolves only to private addresses'), '', 0);
          if (lookupOptions.all) return (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, allowed);
          callback(null, first.address, first.family);
        });
      },
    },
    headersTimeout: timeout,
    bodyTimeout: timeout,
  });
  return {
    async fetchList(url, accountId, signal) {
      try {
        if (!options.allowPrivate) {
          const host = new URL(url).hostname.replace(/^\[|\]$/g, '');
          if (/^[\d.]+$|:/.test(host) && isPrivateAddress(host))
            return { ok: false, error: 'the source URL points to a private address' };
        }
        const secret = await options.secretOf(accountId);
        const headers = {
          ...signatureHeaders(secret, newId('req'), options.clock(), ''),
          accept: 'application/json',
          'otpilot-account-id': accountId,
        };
        const response = await request(url, {
          method: 'GET',
          headers,
          dispatcher: agent,
          ...(signal ? { signal } : {}),
        });
        if (response.statusCode < 200 || response.statusCode >= 300) {
          await response.body.dump();
          return { ok: false, error: `the source answered HTTP ${response.statusCode}` };
        }
        const chunks: Buffer[] = [];
        let size = 0;
        for await (const chunk of response.body) {
          size += (chunk as Buffer).length;
          if (size > MAX_BODY) {
            response.body.destroy();
            return { ok: false, error: `the source's list is larger than ${MAX_BODY} bytes` };
          }
          chunks.push(chunk as Buffer);
        }
        let body: unknown;
        try {
          body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        } catch {
          return { ok: false, error: 'the source did not answer JSON' };
        }
        const list = Array.isArray(body) ? body : (body as { payments?: unknown } | null)?.payments;
        if (!Array.isArray(list))
          return { ok: false, error: 'the source answered neither { "payments": [...] } nor an array' };
        return { ok: true, payments: list };
      } catch (error) {
        return {
          ok: false,
          error: `the source could not be read: ${error instanceof Error ? error.message : String(error)}`,
        };
      }
    },
    close: () => agent.close(),
  };
}
