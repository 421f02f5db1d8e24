import { createHmac, randomBytes } from 'node:crypto';

/** Where a phone also sends its SMS (a relay under test), and in which shape. */
export interface ForwardConfig {
  url: string;
  format: 'twilio' | 'json';
  authToken: string | null;
  /** Twilio's account id, fixed per configuration as it would be for one Twilio account. */
  accountSid: string;
}

/** One SMS as it lands on a phone. */
export interface Sms {
  body: string;
  code: string;
  sent_at: string;
  to: string;
  from: string;
}

/** Forwarding only needs to survive a dead or slow relay, never to wait for it. */
const FORWARD_TIMEOUT_MS = 5_000;

export function makeForwardConfig(url: string, format: 'twilio' | 'json', authToken: string | null): ForwardConfig {
  return { url, format, authToken, accountSid: `AC${randomBytes(16).toString('hex')}` };
}

/**
 * Twilio's request signature: base64 HMAC-SHA1, keyed with the auth token, over the full URL followed by every
 * POST parameter's name and value, sorted by name.
 */
export function twilioSignature(authToken: string, url: string, params: Readonly<Record<string, string>>): string {
  let data = url;
  for (const name of Object.keys(params).sort()) data += name + params[name];
  return createHmac('sha1', authToken).update(data, 'utf8').digest('base64');
}

/** The fields of Twilio's inbound-message webhook for one SMS. */
export function twilioParams(config: ForwardConfig, sms: Sms): Record<string, string> {
  const sid = `SM${randomBytes(16).toString('hex')}`;
  return {
    ApiVersion: '2010-04-01',
    AccountSid: config.accountSid,
    MessageSid: sid,
    SmsMessageSid: sid,
    SmsSid: sid,
    SmsStatus: 'received',
    From: sms.from,
    To: sms.to,
    ToCountry: 'NL',
    Body: sms.body,
    NumMedia: '0',
    NumSegments: '1',
  };
}

/** Fire and forget: the phone never waits for the relay, and relay failures are ignored on purpose. */
export function forwardSms(config: ForwardConfig, sms: Sms): void {
  let body: string;
  const headers: Record<string, string> = {};
  if (config.format === 'json') {
    body = JSON.stringify({ to: sms.to, from: sms.from, body: sms.body, received_at: sms.sent_at });
    headers['content-type'] = 'application/json';
  } else {
    const params = twilioParams(config, sms);
    body = new URLSearchParams(params).toString();
    headers['content-type'] = 'application/x-www-form-urlencoded';
    // Without an auth token there is nothing to sign with; the relay decides whether to accept that.
    if (config.authToken !== null)
      headers['x-twilio-signature'] = twilioSignature(config.authToken, config.url, params);
  }
  try {
    fetch(config.url, { method: 'POST', headers, body, signal: AbortSignal.timeout(FORWARD_TIMEOUT_MS) })
      .then((res) => res.body?.cancel())
      .catch(() => {});
  } catch {
    // fetch can throw synchronously on an unusable URL; forwarding must never break the bank.
  }
}
