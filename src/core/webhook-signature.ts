/**
 * The one webhook signing scheme of TokenGrid: Standard Webhooks (https://www.standardwebhooks.com), so a
 * receiver can verify with the official libraries (`npm i standardwebhooks`, `pip install standardwebhooks`, ...).
 *
 *   webhook-id:        a stable id of the message (the same on every retry; receivers deduplicate by it)
 *   webhook-timestamp: unix seconds when this attempt was sent
 *   webhook-signature: v1,<base64 HMAC-SHA256(key, "<id>.<timestamp>.<body>")>  (space-separated list)
 *
 * The secret is `whsec_<base64 of the key bytes>` (what TokenGrid generates). A secret without the prefix is
 * used as raw UTF-8 key bytes (secrets configured before the switch keep working; verify those with
 * `new Webhook(secret, { format: 'raw' })`).
 * Used by the charging-event notifications (src/notifications) and the carrier channel (src/billing/carrier.ts).
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export const WEBHOOK_SECRET_PREFIX = 'whsec_';
/** Replay window of the verifier (the spec's default: 5 minutes either way). */
export const WEBHOOK_TOLERANCE_S = 5 * 60;

export interface SignedWebhookHeaders {
  'webhook-id': string;
  'webhook-timestamp': string;
  'webhook-signature': string;
}

/** The HMAC key bytes of a secret: `whsec_<base64>` decoded, anything else taken as raw UTF-8. */
export function webhookKey(secret: string): Buffer {
  if (secret.startsWith(WEBHOOK_SECRET_PREFIX)) {
    const b64 = secret.slice(WEBHOOK_SECRET_PREFIX.length);
    const key = Buffer.from(b64, 'base64');
    if (key.length === 0 || !/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) throw new Error('a webhook secret starting with whsec_ must continue with base64 key bytes');
    return key;
  }
  return Buffer.from(secret, 'utf8');
}

/** A fresh secret in the spec's format from 32 random bytes (the caller owns the randomness). */
export function formatWebhookSecret(keyBytes: Uint8Array): string {
  return `${WEBHOOK_SECRET_PREFIX}${Buffer.from(keyBytes).toString('base64')}`;
}

/** `v1,<base64 signature>` of one message. */
export function signWebhookMessage(secret: string | Buffer, id: string, timestampS: number, body: string): string {
  const key = typeof secret === 'string' ? webhookKey(secret) : secret;
  return `v1,${createHmac('sha256', key).update(`${id}.${timestampS}.${body}`).digest('base64')}`;
}

/** The three headers to add to the POST of `body`. */
export function webhookHeaders(secret: string | Buffer, id: string, nowMs: number, body: string): SignedWebhookHeaders {
  const timestampS = Math.floor(nowMs / 1000);
  return { 'webhook-id': id, 'webhook-timestamp': String(timestampS), 'webhook-signature': signWebhookMessage(secret, id, timestampS, body) };
}

export type WebhookVerifyResult = { ok: true } | { ok: false; reason: 'missing_headers' | 'bad_timestamp' | 'too_old' | 'too_new' | 'bad_signature' };

/**
 * Verify a received webhook as the official libraries do: the three headers present, the timestamp within the
 * tolerance of `nowMs`, and one of the space-separated `v1,` signatures equal (constant time) to ours.
 */
export function verifyWebhook(
  secret: string,
  headers: Record<string, string | string[] | undefined>,
  body: string,
  nowMs: number,
  toleranceS = WEBHOOK_TOLERANCE_S,
): WebhookVerifyResult {
  const h = (name: string): string | undefined => {
    const v = headers[name] ?? headers[name.toLowerCase()];
    return Array.isArray(v) ? v[0] : v;
  };
  const id = h('webhook-id');
  const ts = h('webhook-timestamp');
  const sigs = h('webhook-signature');
  if (!id || !ts || !sigs) return { ok: false, reason: 'missing_headers' };
  if (!/^\d{1,15}$/.test(ts)) return { ok: false, reason: 'bad_timestamp' };
  const timestampS = Number(ts);
  const nowS = Math.floor(nowMs / 1000);
  if (timestampS < nowS - toleranceS) return { ok: false, reason: 'too_old' };
  if (timestampS > nowS + toleranceS) return { ok: false, reason: 'too_new' };
  const expected = Buffer.from(signWebhookMessage(secret, id, timestampS, body).slice(3), 'base64');
  for (const entry of sigs.split(' ')) {
    const comma = entry.indexOf(',');
    if (comma < 0 || entry.slice(0, comma) !== 'v1') continue;
    const got = Buffer.from(entry.slice(comma + 1), 'base64');
    if (got.length === expected.length && timingSafeEqual(got, expected)) return { ok: true };
  }
  return { ok: false, reason: 'bad_signature' };
}
