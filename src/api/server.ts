import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { TokenGridError, type ErrorCode } from '../core/index.ts';
import { isClientAbort, type CallSignal, type RequestContext } from '../gateway/index.ts';
import { sendError } from './errors.ts';
import { bearerToken, setRequestId, setRequestIdHeader, type Family } from './http.ts';
import { Router, type Route, type RouteContext } from './router.ts';
import type { AdminIdentity, ShellDeps } from './shell-deps.ts';

const REQUEST_ID = /^[\w.-]{1,128}$/;
/** Distinct unknown routes logged at most (then they are only counted in /metrics). */
export const UNKNOWN_ROUTES_LOGGED_MAX = 1000;

/**
 * The client's abort signal, one per request: what undici and the gateway use of an AbortSignal
 * (aborted, reason, add/removeEventListener), without an EventTarget and an AbortController per request.
 * Aborted when the response closes before it finished (the client went away).
 */
export class ClientSignal implements CallSignal {
  aborted = false;
  reason: unknown = undefined;
  #listeners: (() => void)[] | undefined;

  addEventListener(_type: 'abort', listener: () => void): void {
    if (this.aborted) return;
    (this.#listeners ??= []).push(listener);
  }

  removeEventListener(_type: 'abort', listener: () => void): void {
    const ls = this.#listeners;
    if (ls === undefined) return;
    const i = ls.indexOf(listener);
    if (i >= 0) ls.splice(i, 1);
  }

  abort(reason: unknown = new Error('The client closed the connection.')): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    const ls = this.#listeners;
    this.#listeners = undefined;
    if (ls !== undefined) for (const l of ls) l();
  }
}

const kSignal = Symbol('tokengrid.clientSignal');
type ResWithSignal = ServerResponse & { [kSignal]?: ClientSignal };

/** One shared 'close' listener (no closure per request): a response that closes unfinished aborts its request. */
function onResponseClose(this: ResWithSignal): void {
  if (!this.writableFinished) this[kSignal]?.abort();
}

/** The route's view of the request; the query string is parsed only if a route reads it. */
class Context implements RouteContext {
  #query: URLSearchParams | undefined;
  constructor(
    readonly req: IncomingMessage,
    readonly res: ServerResponse,
    readonly requestId: string,
    readonly params: Record<string, string>,
    readonly search: string,
  ) {}
  get query(): URLSearchParams {
    return (this.#query ??= new URLSearchParams(this.search));
  }
}

export interface HttpShell {
  server: Server;
  /** Streams and requests in flight (for graceful shutdown). */
  inFlight(): number;
}

/**
 * The HTTP shell: parse, authenticate, call one gateway or admin use case, map the outcome (habit 1).
 * Each API family renders its own error shape; the process never crashes on a bad request.
 */
export function createHttpShell(deps: ShellDeps, routes: Route<never>[]): HttpShell {
  const router = new Router();
  for (const r of routes) router.add(r);
  let inFlight = 0;
  /** Unknown routes already logged (method + path), bounded: each is logged once, all are counted. */
  const unknownSeen = new Set<string>();
  function unknownRoute(method: string, path: string): void {
    deps.onUnknownRoute?.(method);
    if (unknownSeen.size >= UNKNOWN_ROUTES_LOGGED_MAX) return;
    const key = `${method.slice(0, 16)} ${path.slice(0, 200)}`;
    if (unknownSeen.has(key)) return;
    unknownSeen.add(key);
    deps.log.warn(
      { method: method.slice(0, 16), path: path.slice(0, 200), distinctUnknownRoutes: unknownSeen.size },
      'unknown route (logged once per method and path)',
    );
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const startedAt = deps.now();
    // The charging identity is always the server's own id (issue 12, finding 1): a client's x-request-id is
    // only a correlation label, echoed as x-client-request-id, logged and stored on the usage record.
    const requestId = deps.ids.next('req');
    const headerId = req.headers['x-request-id'] ?? req.headers['x-client-request-id'];
    const clientRequestId = typeof headerId === 'string' && REQUEST_ID.test(headerId) ? headerId : undefined;
    setRequestId(res, requestId); // sent as x-request-id with the head (http.ts)
    if (clientRequestId !== undefined) res.setHeader('x-client-request-id', clientRequestId);
    const qIndex = req.url?.indexOf('?') ?? -1;
    const path = qIndex >= 0 ? req.url!.slice(0, qIndex) : (req.url ?? '/');
    const family: Family = path.startsWith('/v1/messages') ? 'anthropic' : path.startsWith('/admin') || path.startsWith('/self') ? 'admin' : 'openai';
    // Chat front-ends read the legacy billing routes with and without /v1.
    const m = router.match(req.method ?? 'GET', path.startsWith('/dashboard/') ? `/v1${path}` : path);
    if (m === undefined || m === 'method') {
      req.resume();
      if (m === undefined) unknownRoute(req.method ?? 'GET', path);
      const code: ErrorCode = m === 'method' ? 'method_not_allowed' : 'not_found';
      sendError(res, family, { code, message: m === 'method' ? `${req.method} is not supported on ${path}.` : `Unknown route ${req.method} ${path}.` });
      return;
    }
    const { route, params } = m;
    if (deps.isDraining() && route.auth !== 'none') {
      req.resume();
      sendError(res, route.family, { code: 'shutting_down', message: 'The server is shutting down; retry on another instance.' });
      return;
    }
    const rc: RouteContext = new Context(req, res, requestId, params, qIndex >= 0 ? req.url!.slice(qIndex + 1) : '');
    let authValue: unknown;
    const signal = new ClientSignal();
    if (route.auth !== 'none' && deps.authThrottle !== undefined && !deps.authThrottle.idle) {
      const waitS = deps.authThrottle.blockedForS(req.socket.remoteAddress ?? '', deps.clock.nowMs());
      if (waitS > 0) {
        req.resume();
        sendError(
          res,
          route.family,
          new TokenGridError('rate_limited', `Too many failed authentications from this address; retry in ${waitS} s.`, null, { 'retry-after': String(waitS) }),
        );
        return;
      }
    }
    if (route.auth === 'key') {
      const check = deps.keys.authenticate(bearerToken(req), deps.clock.nowMs());
      if (!check.ok) {
        req.resume();
        deps.onAuthFailed?.({ kind: 'key', source: req.socket.remoteAddress ?? '', requestId, method: req.method ?? '', path });
        sendError(res, route.family, { code: check.code, message: check.message });
        return;
      }
      const ctx: RequestContext = {
        requestId,
        family: route.family === 'anthropic' ? 'anthropic' : 'openai',
        key: check.key,
        signal,
        startedAt,
        accountLimits: deps.keys.accountLimits(check.key.accountId),
        modelMap: deps.keys.modelMap(check.key.accountId),
        packageModels: deps.keys.packageModels(check.key.accountId),
        res,
      };
      if (clientRequestId !== undefined) ctx.clientRequestId = clientRequestId;
      if (deps.keys.hasFeature(check.key.accountId, 'security_pack')) ctx.guardrails = true;
      const cacheHeader = req.headers['x-tokengrid-cache'];
      if (cacheHeader !== undefined) {
        const v = String(cacheHeader).trim().toLowerCase();
        if (v !== 'on' && v !== 'off') {
          req.resume();
          sendError(res, route.family, new TokenGridError('invalid_request', "The x-tokengrid-cache header must be 'on' or 'off'.", 'x-tokengrid-cache'));
          return;
        }
        ctx.cache = v;
      }
      authValue = ctx;
    } else if (route.auth === 'admin') {
      const admin: AdminIdentity | undefined = deps.authenticateAdmin(bearerToken(req));
      if (!admin) {
        req.resume();
        deps.onAuthFailed?.({ kind: 'admin', source: req.socket.remoteAddress ?? '', requestId, method: req.method ?? '', path });
        sendError(res, route.family, { code: 'invalid_api_key', message: 'An admin key is required: Authorization: Bearer <admin key>.' });
        return;
      }
      authValue = admin;
    }
    // A client that goes away aborts its upstream request (and stops the meter).
    (res as ResWithSignal)[kSignal] = signal;
    res.on('close', onResponseClose); // 'close' fires once; on() spares once()'s wrapper
    inFlight++;
    try {
      await (route.handler as (rc: RouteContext, a: unknown) => Promise<void> | void)(rc, authValue);
    } catch (e) {
      if (e instanceof TokenGridError) {
        if (!res.headersSent) sendError(res, route.family, e);
        else res.end();
      } else if (isClientAbort(e)) {
        setRequestIdHeader(res);
        res.end();
      } else {
        deps.log.error({ err: e, requestId, path }, 'unhandled error');
        if (!res.headersSent) sendError(res, route.family, { code: 'internal_error', message: `Internal error; quote request id ${requestId}.` });
        else res.end();
      }
    } finally {
      inFlight--;
      const status = res.statusCode;
      const latencyS = (deps.now() - startedAt) / 1000;
      deps.onRequestDone?.(route.path, status, latencyS);
      if (deps.log.isLevelEnabled?.('info') !== false) {
        deps.log.info(
          clientRequestId === undefined
            ? { requestId, method: req.method, route: route.path, status, latencyMs: Math.round(latencyS * 1e6) / 1e3 }
            : { requestId, clientRequestId, method: req.method, route: route.path, status, latencyMs: Math.round(latencyS * 1e6) / 1e3 },
          'request',
        );
      }
    }
  }

  const server = createServer({ keepAliveTimeout: 65_000, requestTimeout: 0, headersTimeout: 60_000 }, (req, res) => {
    handle(req, res).catch((e: unknown) => {
      deps.log.error({ err: e }, 'request handler crashed');
      if (!res.headersSent) sendError(res, 'openai', { code: 'internal_error', message: 'Internal error.' });
      else res.end();
    });
  });
  server.on('clientError', (err, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
    else socket.destroy(err);
  });
  return { server, inFlight: () => inFlight };
}
