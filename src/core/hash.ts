import { createHash, timingSafeEqual } from 'node:crypto';

export function sha256Hex(text: string): string {
  return createHash('sha256').update(text).digest('hex');
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
