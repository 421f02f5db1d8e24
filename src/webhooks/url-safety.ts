import { lookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';

/**
 * Address ranges a webhook must never reach unless OTPILOT_ALLOW_PRIVATE_URLS=true: loopback,
 * private, link-local (cloud metadata lives there), carrier-grade NAT, unique-local, multicast and
 * unspecified addresses. Checked when a URL is saved and again when each request connects, so a
 * DNS answer that changes later (rebinding) cannot sneak a request inside.
 */
const blocked = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const) {
  blocked.addSubnet(net, prefix, 'ipv4');
}
for (const [net, prefix] of [
  ['::', 96], // unspecified, loopback and IPv4-compatible (::a.b.c.d)
  ['64:ff9b::', 96], // NAT64: reaches IPv4 addresses through a gateway
  ['2002::', 16], // 6to4: embeds an IPv4 address
  ['fc00::', 7],
  ['fe80::', 10],
  ['ff00::', 8],
] as const) {
  blocked.addSubnet(net, prefix, 'ipv6');
}

/** True for an address otpilot must not send webhooks to (IPv4-mapped IPv6 included). */
export function isPrivateAddress(address: string): boolean {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return blocked.check(mapped[1]!, 'ipv4');
  const family = isIP(address);
  if (family === 4) return blocked.check(address, 'ipv4');
  if (family === 6) return blocked.check(address, 'ipv6');
  return true; // not an address at all: refuse
}

export type UrlCheck = { ok: true; url: URL } | { ok: false; reason: string };

/** Validates a webhook URL at save time: http(s), resolvable, and public unless private URLs are allowed. */
export async function checkWebhookUrl(raw: string, options: { allowPrivate: boolean }): Promise<UrlCheck> {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return { ok: false, reason: 'must be an absolute URL' };
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return { ok: false, reason: 'must be an http(s) URL' };
  if (url.username || url.password) return { ok: false, reason: 'must not carry credentials; use the auth settings' };
  const host = url.hostname.replace(/^\[|\]$/g, '');
  let addresses: string[];
  try {
    addresses = isIP(host) ? [host] : (await lookup(host, { all: true, verbatim: true })).map((a) => a.address);
  } catch {
    return { ok: false, reason: `the host ${host} cannot be resolved` };
  }
  if (addresses.length === 0) return { ok: false, reason: `the host ${host} cannot be resolved` };
  if (!options.allowPrivate && addresses.some(isPrivateAddress)) {
    return {
      ok: false,
      reason: 'points to a private, loopback or link-local address (set OTPILOT_ALLOW_PRIVATE_URLS=true to allow)',
    };
  }
  return { ok: true, url };
}
