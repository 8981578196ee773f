/** Bounded reads of a response body (never more than bytesMax buffered; past it the connection is closed). */
import type { Dispatcher } from 'undici';
import type { UpstreamCall } from '../types.ts';
import { bodyError, tooLargeError } from './errors.ts';

/**
 * The whole body as UTF-8 text. Past `bytesMax`: 'malformed' (a 2xx answer), or with `over: 'truncate'` the
 * first bytesMax bytes (an error body kept for the logs). A body that breaks off is mapped by bodyError.
 */
export async function readBody(
  call: UpstreamCall,
  body: Dispatcher.ResponseData['body'],
  bytesMax: number,
  over: 'error' | 'truncate' = 'error',
): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of body as AsyncIterable<Buffer>) {
      if (size + chunk.length > bytesMax) {
        body.destroy();
        if (over === 'error') throw tooLargeError(call, bytesMax);
        chunks.push(chunk.subarray(0, bytesMax - size));
        return Buffer.concat(chunks).toString('utf8');
      }
      chunks.push(chunk);
      size += chunk.length;
    }
  } catch (e) {
    throw bodyError(e, call);
  }
  return chunks.length === 1 ? chunks[0]!.toString('utf8') : Buffer.concat(chunks).toString('utf8');
}
