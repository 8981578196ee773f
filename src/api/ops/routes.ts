import { constantTimeEqual, sha256Hex } from '../../core/index.ts';
import { sendError } from '../errors.ts';
import { bearerToken, sendJson, sendText } from '../http.ts';
import type { Route } from '../router.ts';
import type { ShellDeps } from '../shell-deps.ts';

export function opsRoutes(deps: ShellDeps): Route<never>[] {
  return [
    { method: 'GET', path: '/healthz', family: 'openai', auth: 'none', handler: (rc) => sendJson(rc.res, 200, { status: 'ok' }) },
    {
      method: 'GET',
      path: '/readyz',
      family: 'openai',
      auth: 'none',
      handler(rc) {
        const ready = deps.isReady() && !deps.isDraining();
        sendJson(rc.res, ready ? 200 : 503, { status: ready ? 'ready' : deps.isDraining() ? 'draining' : 'starting' });
      },
    },
    {
      method: 'GET',
      path: '/metrics',
      family: 'openai',
      auth: 'none',
      async handler(rc) {
        if (deps.metricsToken !== undefined) {
          const given = bearerToken(rc.req);
          if (given === undefined || !constantTimeEqual(sha256Hex(given), sha256Hex(deps.metricsToken))) {
            rc.req.resume();
            sendError(rc.res, 'openai', { code: 'invalid_api_key', message: 'GET /metrics requires Authorization: Bearer <TOKENGRID_METRICS_TOKEN>.' });
            return;
          }
        }
        const m = await deps.metricsText();
        sendText(rc.res, 200, m.body, m.contentType);
      },
    },
  ];
}
