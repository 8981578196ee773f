import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { TokenGridError, type ErrorCode } from '../core/index.ts';
import { isClientAbort, type RequestContext } from '../gateway/index.ts';
import { sendError } from './errors.ts';
import { bearerToken, type Family } from './http.ts';
import { Router, type Route, type RouteContext } from './router.ts';
import type { AdminIdentity, ShellDeps } from './shell-deps.ts';

const REQUEST_ID = /^[\w.-]{1,128}$/;

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

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const startedAt = deps.now();
    const headerId = req.headers['x-request-id'];
    const requestId = typeof headerId === 'string' && REQUEST_ID.test(headerId) ? headerId : deps.ids.next('req');
    res.setHeader('x-request-id', requestId);
    const qIndex = req.url?.indexOf('?') ?? -1;
    const path = qIndex >= 0 ? req.url!.slice(0, qIndex) : req.url ?? '/';
    const family: Family = path.startsWith('/v1/messages') ? 'anthropic' : path.startsWith('/admin') || path.startsWith('/self') ? 'admin' : 'openai';
    const m = router.match(req.method ?? 'GET', path);
    if (m === undefined || m === 'method') {
      req.resume();
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
    const rc: RouteContext = { req, res, requestId, params, query: new URLSearchParams(qIndex >= 0 ? req.url!.slice(qIndex + 1) : '') };
    let authValue: unknown;
    const abort = new AbortController();
    if (route.auth === 'key') {
      const check = deps.keys.authenticate(bearerToken(req), deps.clock.nowMs());
      if (!check.ok) {
        req.resume();
        sendError(res, route.family, { code: check.code, message: check.message });
        return;
      }
      const ctx: RequestContext = { requestId, family: route.family === 'anthropic' ? 'anthropic' : 'openai', key: check.key, signal: abort.signal, startedAt, accountLimits: deps.keys.accountLimits(check.key.accountId) };
      authValue = ctx;
    } else if (route.auth === 'admin') {
      const admin: AdminIdentity | undefined = deps.authenticateAdmin(bearerToken(req));
      if (!admin) {
        req.resume();
        sendError(res, route.family, { code: 'invalid_api_key', message: 'An admin key is required: Authorization: Bearer <admin key>.' });
        return;
      }
      authValue = admin;
    }
    // A client that goes away aborts its upstream request (and stops the meter).
    res.on('close', () => { if (!res.writableFinished) abort.abort(); });
    inFlight++;
    try {
      await (route.handler as (rc: RouteContext, a: unknown) => Promise<void> | void)(rc, authValue);
    } catch (e) {
      if (e instanceof TokenGridError) {
        if (!res.headersSent) sendError(res, route.family, e);
        else res.end();
      } else if (isClientAbort(e)) {
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
      deps.log.info({ requestId, method: req.method, route: route.path, status, latencyMs: Math.round(latencyS * 1e6) / 1e3 }, 'request');
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
