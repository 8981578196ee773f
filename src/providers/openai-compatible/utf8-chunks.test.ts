import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Utf8Chunks } from './http.ts';

/** What the stream reader gave before: one streaming TextDecoder over all chunks (never flushed at the end). */
function viaTextDecoder(chunks: Buffer[]): string {
  const d = new TextDecoder();
  return chunks.map((c) => d.decode(c, { stream: true })).join('');
}

function cut(bytes: Buffer, cuts: number[]): Buffer[] {
  const out: Buffer[] = [];
  let start = 0;
  for (const c of [...new Set(cuts.map((x) => x % (bytes.length + 1)))].sort((a, b) => a - b)) {
    out.push(bytes.subarray(start, c));
    start = c;
  }
  out.push(bytes.subarray(start));
  return out;
}

const bytesLike = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 24 }).map((s) => Buffer.from(s, 'utf8')),
  fc.uint8Array({ maxLength: 24 }).map((a) => Buffer.from(a)),
  fc.string({ unit: 'binary', maxLength: 12 }).map((s) => Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(s, 'utf8')])),
);

test('body chunks decode to the same text as one streaming TextDecoder, however the bytes are cut (BOM and invalid bytes included)', () => {
  fc.assert(
    fc.property(bytesLike, fc.array(fc.nat(), { maxLength: 6 }), (bytes, cuts) => {
      const chunks = cut(bytes, cuts);
      const u = new Utf8Chunks();
      const got = chunks.map((c) => u.decode(c)).join('');
      assert.equal(got, viaTextDecoder(chunks));
    }),
    { numRuns: 2000 },
  );
});
