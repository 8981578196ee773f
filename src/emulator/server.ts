import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { handleCountTokens, handleMessages } from './anthropic.ts';
import { stripDirectives } from './directives.ts';
import { Exchange, type ServerState } from './exchange.ts';
import { isRecord, type Json } from './flow.ts';
import { handleEmbed, handleGenerate } from './gemini.ts';
import { handleChat } from './openai-chat.ts';
import { handleCompletions, handleEmbeddings, handleModel, handleModels } from './openai-extra.ts';
import { handleResponses } from './openai-responses.ts';
import { DEFAULT_PACING, type Emulator, type EmulatorOptions, type EmulatorStats, type Pacing } from './types.ts';
import type { Dialect } from './vendor-errors.ts';

/** Upper bound on a request body; larger bodies get 413 in the vendor's format. */
const BODY_BYTES_MAX = 32 * 1024 * 1024;
/** Upper bound on distinct byPath keys, so random probing cannot grow the stats without limit. */
const PATH_KEYS_MAX = 1000;

function emptyStats(): EmulatorStats {
  return { requests: 0, byPath: {}, byModel: {}, aborted: 0 };
}

export function mergePacing(base: Pacing, o: Partial<EmulatorOptions>): Pacing {
  const num = (v: unknown, fallback: number, min: number): number => (typeof v === 'number' && Number.isFinite(v) ? Math.max(min, Math.floor(v)) : fallback);
  return {
    ttftMs: num(o.ttftMs, base.ttftMs, 0),
    chunkIntervalMs: num(o.chunkIntervalMs, base.chunkIntervalMs, 0),
    tokensPerChunk: num(o.tokensPerChunk, base.tokensPerChunk, 1),
    outputTokens: num(o.outputTokens, base.outputTokens, 0),
  };
}

type BodyHandler = (ex: Exchange, body: Json) => void;

/** Distinct paths whose last request is kept (Gemini paths carry the model). */
const LAST_PATHS_MAX = 32;

function capture(ex: Exchange, body: Json): void {
  const url = ex.req.url ?? '/';
  const q = url.indexOf('?');
  const path = q < 0 ? url : url.slice(0, q);
  const last = ex.state.last;
  if (!last.has(path) && last.size >= LAST_PATHS_MAX) last.clear();
  last.set(path, { headers: ex.req.headers, body });
}

/** Reads the whole body, parses a JSON object, answers 400/413 in the dialect's format otherwise. */
function withJsonBody(ex: Exchange, dialect: Dialect, handler: BodyHandler): void {
  const chunks: Buffer[] = [];
  let size = 0;
  ex.req.on('data', (c: Buffer) => {
    size += c.length;
    if (size <= BODY_BYTES_MAX) chunks.push(c);
  });
  ex.req.on('error', () => ex.destroy());
  ex.req.on('end', () => {
    if (ex.res.destroyed) return;
    if (size > BODY_BYTES_MAX) return ex.error(dialect, 413, `Request body exceeds ${BODY_BYTES_MAX} bytes.`);
    let body: unknown;
    try {
      body = JSON.parse((chunks.length === 1 ? chunks[0] : Buffer.concat(chunks))?.toString('utf8') ?? '');
    } catch {
      return ex.error(dialect, 400, 'We could not parse the JSON body of your request.');
    }
    if (!isRecord(body)) return ex.error(dialect, 400, 'The request body must be a JSON object.');
    capture(ex, body);
    try {
      handler(ex, body);
    } catch (e) {
      // A bug in the emulator must not take the process (and every other test) down.
      ex.state.log(`emulator: handler failed on ${ex.req.url}: ${(e as Error).stack ?? String(e)}`);
      if (!ex.res.headersSent) ex.error(dialect, 500, 'The emulator failed to handle this request.');
      else ex.destroy();
    }
  });
}

function header(req: IncomingMessage, name: string): string {
  const v = req.headers[name];
  return (Array.isArray(v) ? v[0] : v)?.trim() ?? '';
}

function hasBearer(req: IncomingMessage): boolean {
  const auth = header(req, 'authorization');
  return auth.length > 7 && auth.slice(0, 7).toLowerCase() === 'bearer ' && auth.slice(7).trim() !== '';
}

function openaiAuthorized(ex: Exchange): boolean {
  if (hasBearer(ex.req)) return true;
  ex.error(
    'openai',
    401,
    "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
  );
  return false;
}

/** x-api-key, or a bearer token: @anthropic-ai/sdk 1.x sends API keys as `Authorization: Bearer`. */
function anthropicAuthorized(ex: Exchange): boolean {
  if (header(ex.req, 'x-api-key') === '' && !hasBearer(ex.req)) {
    ex.error('anthropic', 401, 'x-api-key header is required');
    return false;
  }
  if (header(ex.req, 'anthropic-version') === '') {
    ex.error('anthropic', 400, 'anthropic-version: header is required');
    return false;
  }
  return true;
}

function geminiAuthorized(ex: Exchange, query: string): boolean {
  if (header(ex.req, 'x-goog-api-key') !== '') return true;
  if (query !== '' && (new URLSearchParams(query).get('key') ?? '') !== '') return true;
  ex.error(
    'gemini',
    403,
    "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.",
  );
  return false;
}

function countPath(state: ServerState, key: string): void {
  const by = state.stats.byPath;
  const n = by[key];
  if (n !== undefined) by[key] = n + 1;
  else if (Object.keys(by).length < PATH_KEYS_MAX) by[key] = 1;
  else by['(other)'] = (by['(other)'] ?? 0) + 1;
}

const OPENAI_POST: Record<string, BodyHandler> = {
  '/v1/chat/completions': handleChat,
  '/v1/completions': handleCompletions,
  '/v1/embeddings': handleEmbeddings,
  '/v1/responses': handleResponses,
};
const ANTHROPIC_POST: Record<string, BodyHandler> = {
  '/v1/messages': handleMessages,
  '/v1/messages/count_tokens': handleCountTokens,
};

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** Gemini: /v1beta/models/{model}:{method} (also /v1/...); the model segment may be %-encoded. */
function routeGemini(ex: Exchange, path: string, query: string): boolean {
  const prefix = path.startsWith('/v1beta/models/') ? 15 : path.startsWith('/v1/models/') ? 11 : -1;
  const colon = path.lastIndexOf(':');
  if (prefix < 0 || colon < prefix) return false;
  const rawModel = safeDecode(path.slice(prefix, colon));
  const method = path.slice(colon + 1);
  countPath(ex.state, `${path.slice(0, prefix)}${stripDirectives(rawModel)}:${method}`);
  if (ex.req.method !== 'POST') return (ex.error('gemini', 404, `Method ${ex.req.method ?? ''} not found.`), true);
  if (!geminiAuthorized(ex, query)) return true;
  const sse = query.includes('alt=sse');
  if (method === 'generateContent') withJsonBody(ex, 'gemini', (e, b) => handleGenerate(e, b, rawModel, false, false));
  else if (method === 'streamGenerateContent') withJsonBody(ex, 'gemini', (e, b) => handleGenerate(e, b, rawModel, true, sse));
  else if (method === 'embedContent') withJsonBody(ex, 'gemini', (e, b) => handleEmbed(e, b, rawModel, false));
  else if (method === 'batchEmbedContents') withJsonBody(ex, 'gemini', (e, b) => handleEmbed(e, b, rawModel, true));
  else ex.error('gemini', 404, `Method ${method} not found.`);
  return true;
}

function route(ex: Exchange, path: string, query: string): void {
  const method = ex.req.method;
  if (method === 'POST') {
    const openai = OPENAI_POST[path];
    if (openai !== undefined) {
      countPath(ex.state, path);
      if (openaiAuthorized(ex)) withJsonBody(ex, 'openai', openai);
      return;
    }
    const anthropic = ANTHROPIC_POST[path];
    if (anthropic !== undefined) {
      countPath(ex.state, path);
      if (anthropicAuthorized(ex)) withJsonBody(ex, 'anthropic', anthropic);
      return;
    }
  }
  if (routeGemini(ex, path, query)) return;
  if (method === 'GET' && path.startsWith('/v1/models')) {
    countPath(ex.state, path === '/v1/models' ? path : '/v1/models/{id}');
    const anthropicStyle = header(ex.req, 'anthropic-version') !== '';
    if (anthropicStyle ? !anthropicAuthorized(ex) : !openaiAuthorized(ex)) return;
    if (path === '/v1/models' || path === '/v1/models/') return handleModels(ex, anthropicStyle);
    return handleModel(ex, safeDecode(path.slice('/v1/models/'.length)));
  }
  countPath(ex.state, path);
  ex.req.resume();
  ex.error(path.startsWith('/v1beta') ? 'gemini' : 'openai', 404, `Unknown request URL: ${method ?? ''} ${path}.`);
}

function control(state: ServerState, req: IncomingMessage, res: ServerResponse, path: string): void {
  const reply = (status: number, body: unknown): void => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  if (path === '/__emulator/stats' && req.method === 'GET') return reply(200, state.stats);
  if (path === '/__emulator/last' && req.method === 'GET') {
    const of = new URLSearchParams((req.url ?? '').split('?')[1] ?? '').get('path') ?? '';
    const hit = state.last.get(of);
    return hit === undefined ? reply(404, { error: `no request seen on ${of}` }) : reply(200, hit);
  }
  if (path === '/__emulator/reset' && req.method === 'POST') {
    req.resume();
    state.stats = emptyStats();
    state.failRateCounter = 0;
    state.promptCache.clear();
    return reply(200, { ok: true });
  }
  if (path === '/__emulator/defaults' && (req.method === 'POST' || req.method === 'GET')) {
    if (req.method === 'GET') return reply(200, state.pacing);
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.length < 64 && chunks.push(c));
    req.on('end', () => {
      try {
        const o: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        if (!isRecord(o)) return reply(400, { error: 'expected a JSON object' });
        state.pacing = mergePacing(state.pacing, o as Partial<EmulatorOptions>);
        reply(200, state.pacing);
      } catch {
        reply(400, { error: 'invalid JSON' });
      }
    });
    return;
  }
  req.resume();
  reply(404, { error: 'unknown emulator control route' });
}

export async function startEmulator(opts: EmulatorOptions & { host?: string; port?: number } = {}): Promise<Emulator> {
  const log = opts.logger ?? ((): void => {});
  const state: ServerState = {
    pacing: mergePacing(DEFAULT_PACING, opts),
    stats: emptyStats(),
    active: new Set(),
    failRateCounter: 0,
    idCounter: 0,
    last: new Map(),
    promptCache: new Map(),
    log,
  };
  const server = createServer({ noDelay: true, keepAliveTimeout: 65_000 }, (req, res) => {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    if (path.startsWith('/__emulator/')) return control(state, req, res, path);
    const ex = new Exchange(req, res, state);
    state.stats.requests++;
    try {
      route(ex, path, q < 0 ? '' : url.slice(q + 1));
    } catch (e) {
      state.log(`emulator: routing failed on ${url}: ${String(e)}`);
      if (!res.headersSent) ex.error('openai', 400, 'The emulator could not route this request.');
    }
  });
  server.on('clientError', (_err, socket) => socket.destroy());
  const host = opts.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  log(`emulator listening on ${url}`);
  let closing: Promise<void> | undefined;
  return {
    url,
    port,
    stats: () => structuredClone(state.stats),
    lastRequest: (path) => {
      const hit = state.last.get(path);
      return hit === undefined ? undefined : structuredClone(hit);
    },
    resetStats: () => {
      state.stats = emptyStats();
      state.failRateCounter = 0;
      state.promptCache.clear();
    },
    setDefaults: (o) => {
      state.pacing = mergePacing(state.pacing, o);
    },
    close: () => {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const ex of state.active) ex.destroy();
        state.active.clear();
        server.closeAllConnections();
        log('emulator closed');
      });
      return closing;
    },
  };
}
