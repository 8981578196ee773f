import * as crypto from 'node:crypto';
import { createHash, timingSafeEqual } from 'node:crypto';

/** crypto.hash (Node >= 20.12): one call, no Hash object; it runs on every authenticated request. */
const oneShot: ((algorithm: string, data: string, encoding: 'hex') => string) | undefined =
  typeof (crypto as { hash?: unknown }).hash === 'function' ? (crypto as unknown as { hash: (a: string, d: string, e: 'hex') => string }).hash : undefined;

export function sha256Hex(text: string): string {
  return oneShot !== undefined ? oneShot('sha256', text, 'hex') : createHash('sha256').update(text).digest('hex');
}

/**
 * Constant-time comparison of two strings. Equal-length inputs (two hex digests, the usual case) are compared
 * directly; different lengths are hashed first so the comparison time does not depend on where they differ.
 */
export function constantTimeEqual(a: string, b: string): boolean {
  const ba = Buffer.from(a);
  const bb = Buffer.from(b);
  if (ba.length === bb.length) return timingSafeEqual(ba, bb);
  timingSafeEqual(createHash('sha256').update(ba).digest(), createHash('sha256').update(bb).digest());
  return false;
}
