/** GET /admin/openapi.json documents every registered admin and self-service route (and nothing that is not registered). */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { accountAdminRoutes } from '../../src/api/admin/accounts.ts';
import { chargingAdminRoutes } from '../../src/api/admin/charging.ts';
import { billingAdminRoutes } from '../../src/api/admin/billing.ts';
import { selfRoutes } from '../../src/api/self/routes.ts';
import { securityAdminRoutes } from '../../src/api/admin/audit.ts';
import { startTestServer, type TestServer } from '../support/server.ts';

let srv: TestServer;
before(async () => {
  srv = await startTestServer();
});
after(() => srv.close());

test('every admin and self-service route is in the OpenAPI document, with its method', async () => {
  const doc = (await srv.admin('GET', '/admin/openapi.json')).body;
  assert.equal(doc.openapi, '3.1.0');
  // Route factories only capture their deps; a proxy that answers itself for every property is enough to list them.
  const deps: any = new Proxy({}, { get: () => deps });
  const routes = (
    [...accountAdminRoutes(deps), ...chargingAdminRoutes(deps), ...billingAdminRoutes(deps), ...securityAdminRoutes(deps), ...selfRoutes(deps)] as {
      method: string;
      path: string;
    }[]
  ).filter((r) => r.path.startsWith('/admin') || r.path.startsWith('/self') || r.path.startsWith('/v1/dashboard'));
  const registered = new Set(routes.map((r) => `${r.method.toLowerCase()} ${r.path.replace(/:(\w+)/g, '{$1}')}`));
  const documented = new Set(
    Object.entries(doc.paths as Record<string, Record<string, unknown>>).flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m} ${p}`)),
  );
  assert.deepEqual(
    [...registered].filter((r) => !documented.has(r)),
    [],
    'registered but not documented',
  );
  assert.deepEqual(
    [...documented].filter((d) => !registered.has(d)),
    [],
    'documented but not registered',
  );
  const sub = doc.paths['/admin/subscriptions'].post;
  assert.deepEqual(sub.requestBody.content['application/json'].schema.required, ['accountId', 'offerId']);
  assert.ok(sub.parameters.some((p: any) => p.name === 'Idempotency-Key' && p.required === true));
  const self = await fetch(`${srv.url}/self/openapi.json`, { headers: { authorization: `Bearer ${srv.demoKey}` } });
  assert.equal(self.status, 200);
});
