import type { IncomingMessage, ServerResponse } from 'node:http';
import { TokenGridError } from '../core/index.ts';

export type Family = 'openai' | 'anthropic' | 'admin';

const JSON_HEADERS = { 'content-type': 'application/json' } as const;

/**
 * Read the whole body up to `limitBytes`. Over the limit: 413 as soon as the limit is crossed (a declared
 * content-length over the limit is refused before reading anything).
 */
export function readBody(req: IncomingMessage, limitBytes: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limitBytes) {
    req.resume();
    return Promise.reject(tooLarge(limitBytes));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let failed = false;
    req.on('data', (chunk: Buffer) => {
      if (failed) return;
      size += chunk.length;
      if (size > limitBytes) {
        failed = true;
        chunks.length = 0;
        reject(tooLarge(limitBytes));
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => { if (!failed) resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)); });
    req.on('error', (e) => { if (!failed) { failed = true; reject(e); } });
  });
}

function tooLarge(limitBytes: number): TokenGridError {
  return new TokenGridError('request_too_large', `The request body is larger than the ${limitBytes}-byte limit.`);
}

export async function readJson(req: IncomingMessage, limitBytes: number): Promise<unknown> {
  const ct = req.headers['content-type'];
  if (ct !== undefined && !/^application\/(?:[\w.+-]*\+)?json\b/i.test(ct) && !/^text\/plain\b/i.test(ct)) {
    req.resume();
    throw new TokenGridError('unsupported_media_type', `Send the body as application/json (got ${ct.split(';')[0]}).`);
  }
  const body = await readBody(req, limitBytes);
  if (body.length === 0) throw new TokenGridError('invalid_json', 'The request body is empty; send a JSON object.');
  try {
    return JSON.parse(body.toString('utf8'));
  } catch (e) {
    throw new TokenGridError('invalid_json', `The request body is not valid JSON: ${(e as Error).message}`);
  }
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers?: Record<string, string>): void {
  const text = JSON.stringify(body);
  if (headers === undefined) {
    // The common case: one small header object, no spreads.
    res.writeHead(status, { 'content-type': JSON_HEADERS['content-type'], 'content-length': Buffer.byteLength(text) });
  } else {
    res.writeHead(status, { ...JSON_HEADERS, 'content-length': Buffer.byteLength(text), ...headers });
  }
  res.end(text);
}

export function sendText(res: ServerResponse, status: number, text: string, contentType: string): void {
  res.writeHead(status, { 'content-type': contentType, 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

export function bearerToken(req: IncomingMessage): string | undefined {
  const auth = req.headers.authorization;
  if (auth !== undefined) {
    const m = /^Bearer\s+(.+)$/i.exec(auth);
    return m ? m[1]!.trim() : undefined;
  }
  const x = req.headers['x-api-key'];
  return typeof x === 'string' ? x.trim() : undefined;
}

export const SSE_HEADERS = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-cache',
  connection: 'keep-alive',
  'x-accel-buffering': 'no',
} as const;
