import type { IncomingMessage, ServerResponse } from 'node:http';
import { TokenGridError } from '../core/index.ts';

export type Family = 'openai' | 'anthropic' | 'admin';

const JSON_TYPE = 'application/json';

/**
 * The request id the shell (server.ts) assigned to a response, sent as `x-request-id` with the response head.
 * Passing it in writeHead's object rather than with res.setHeader spares a per-response header dictionary and
 * an array per header, which writeHead builds to merge the two.
 */
export const kRequestId = Symbol('tokengrid.requestId');
type ResWithId = ServerResponse & { [kRequestId]?: string };

export function setRequestId(res: ServerResponse, requestId: string): void {
  (res as ResWithId)[kRequestId] = requestId;
}

/** Status and head of a response with a body of known length (x-request-id first, as the shell always sent it). */
function writeFixedHead(res: ServerResponse, status: number, contentType: string, length: number, headers?: Record<string, string>): void {
  const id = (res as ResWithId)[kRequestId];
  if (headers === undefined) {
    // The common case: one small header object, no spreads.
    res.writeHead(
      status,
      id === undefined
        ? { 'content-type': contentType, 'content-length': length }
        : { 'x-request-id': id, 'content-type': contentType, 'content-length': length },
    );
  } else {
    res.writeHead(status, { ...(id === undefined ? {} : { 'x-request-id': id }), 'content-type': contentType, 'content-length': length, ...headers });
  }
}

/** The head of an event stream: x-request-id (first), SSE_HEADERS and any extra headers. */
export function writeSseHead(res: ServerResponse, extraHeaders?: Record<string, string>): void {
  const id = (res as ResWithId)[kRequestId];
  if (extraHeaders === undefined) {
    // A literal, not spreads: one object of one shape per stream.
    res.writeHead(
      200,
      id === undefined
        ? SSE_HEADERS
        : {
            'x-request-id': id,
            'content-type': SSE_HEADERS['content-type'],
            'cache-control': SSE_HEADERS['cache-control'],
            connection: SSE_HEADERS.connection,
            'x-accel-buffering': SSE_HEADERS['x-accel-buffering'],
          },
    );
  } else {
    res.writeHead(200, { ...(id === undefined ? {} : { 'x-request-id': id }), ...SSE_HEADERS, ...extraHeaders });
  }
}

/**
 * For a response ended without writeHead (res.end() alone): put x-request-id on it the ordinary way.
 * No-op once the head is sent.
 */
export function setRequestIdHeader(res: ServerResponse): void {
  const id = (res as ResWithId)[kRequestId];
  if (id !== undefined && !res.headersSent) res.setHeader('x-request-id', id);
}

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
    // A small body comes in one chunk: the array is made only for a second one.
    let first: Buffer | undefined;
    let chunks: Buffer[] | undefined;
    let size = 0;
    let failed = false;
    req.on('data', (chunk: Buffer) => {
      if (failed) return;
      size += chunk.length;
      if (size > limitBytes) {
        failed = true;
        first = chunks = undefined;
        reject(tooLarge(limitBytes));
        return;
      }
      if (first === undefined) first = chunk;
      else (chunks ??= [first]).push(chunk);
    });
    req.on('end', () => {
      if (!failed) resolve(chunks !== undefined ? Buffer.concat(chunks) : (first ?? Buffer.alloc(0)));
    });
    req.on('error', (e) => {
      if (!failed) {
        failed = true;
        reject(e);
      }
    });
  });
}

function tooLarge(limitBytes: number): TokenGridError {
  return new TokenGridError('request_too_large', `The request body is larger than the ${limitBytes}-byte limit.`);
}

/** The deepest JSON nesting accepted in any request body (objects and arrays); deeper is a 400, not a crash. */
export const JSON_MAX_DEPTH = 400;

const QUOTE = 34,
  BACKSLASH = 92,
  LBRACE = 123,
  RBRACE = 125,
  LBRACKET = 91,
  RBRACKET = 93,
  COMMA = 44;

/**
 * One linear pass over JSON text that JSON.parse accepted: the nesting depth (at most `maxDepth`) and, when
 * asked, duplicate keys in one object (JSON.parse keeps the last; an admin body must say each field once).
 * Returns a message for the first problem, or undefined.
 */
export function checkJsonShape(text: string, maxDepth: number, rejectDuplicateKeys: boolean): string | undefined {
  // Objects push a Set of their keys (or true without the duplicate check); arrays push false.
  const stack: (Set<string> | boolean)[] = [];
  let expectKey = false;
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      let j = i + 1;
      let escaped = false;
      for (; j < n; j++) {
        const d = text.charCodeAt(j);
        if (d === BACKSLASH) {
          escaped = true;
          j++;
          continue;
        }
        if (d === QUOTE) break;
      }
      if (expectKey) {
        expectKey = false;
        const keys = stack[stack.length - 1];
        if (keys instanceof Set) {
          const raw = text.slice(i, j + 1);
          const key = escaped ? (JSON.parse(raw) as string) : raw.slice(1, -1);
          if (keys.has(key)) return `The request body repeats the key ${JSON.stringify(key)} in one object; send each field once.`;
          keys.add(key);
        }
      }
      i = j;
    } else if (c === LBRACE || c === LBRACKET) {
      if (stack.length >= maxDepth) return `The request body nests objects and arrays deeper than ${maxDepth} levels.`;
      stack.push(c === LBRACKET ? false : rejectDuplicateKeys ? new Set<string>() : true);
      expectKey = c === LBRACE;
    } else if (c === RBRACE || c === RBRACKET) {
      stack.pop();
      expectKey = false;
    } else if (c === COMMA) {
      expectKey = stack[stack.length - 1] !== false;
    }
  }
  return undefined;
}

/** Whether `text` holds more than `limit` occurrences of `a` and `b` together (stops counting past it). */
function moreThan(text: string, a: string, b: string, limit: number): boolean {
  let count = 0;
  for (const ch of [a, b]) {
    for (let i = text.indexOf(ch); i !== -1; i = text.indexOf(ch, i + 1)) if (++count > limit) return true;
  }
  return false;
}

export interface ReadJsonOptions {
  /** Refuse an object that repeats a key (admin bodies: no "last one wins" on money fields). */
  rejectDuplicateKeys?: boolean;
}

export async function readJson(req: IncomingMessage, limitBytes: number, opts?: ReadJsonOptions): Promise<unknown> {
  const ct = req.headers['content-type'];
  if (ct !== undefined && !/^application\/(?:[\w.+-]*\+)?json\b/i.test(ct) && !/^text\/plain\b/i.test(ct)) {
    req.resume();
    throw new TokenGridError('unsupported_media_type', `Send the body as application/json (got ${ct.split(';')[0]}).`);
  }
  const body = await readBody(req, limitBytes);
  if (body.length === 0) throw new TokenGridError('invalid_json', 'The request body is empty; send a JSON object.');
  const text = body.toString('utf8');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new TokenGridError('invalid_json', `The request body is not valid JSON: ${(e as Error).message}`);
  }
  // A body with at most JSON_MAX_DEPTH opening brackets cannot nest deeper: counting them with indexOf (native)
  // spares the character-by-character scan for ordinary requests (2 KB of chat: 0.35 us instead of 7 to 15 us here).
  const rejectDuplicateKeys = opts?.rejectDuplicateKeys === true;
  if (rejectDuplicateKeys || (text.length > JSON_MAX_DEPTH && moreThan(text, '{', '[', JSON_MAX_DEPTH))) {
    const problem = checkJsonShape(text, JSON_MAX_DEPTH, rejectDuplicateKeys);
    if (problem !== undefined) throw new TokenGridError('invalid_json', problem);
  }
  return value;
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers?: Record<string, string>): void {
  const text = JSON.stringify(body);
  writeFixedHead(res, status, JSON_TYPE, Buffer.byteLength(text), headers);
  res.end(text);
}

export function sendText(res: ServerResponse, status: number, text: string, contentType: string): void {
  writeFixedHead(res, status, contentType, Buffer.byteLength(text));
  res.end(text);
}

const BEARER = /^Bearer\s/i;

export function bearerToken(req: IncomingMessage): string | undefined {
  const auth = req.headers.authorization;
  if (auth !== undefined) {
    // What /^Bearer\s+(.+)$/i captured, trimmed, without the match array: header values hold no line breaks, so
    // the pattern matches exactly when a whitespace follows "Bearer" and at least one more character follows.
    return auth.length > 7 && BEARER.test(auth) ? auth.slice(7).trim() : undefined;
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
