import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../../src/core/index.ts';
import { startTestServer } from '../support/server.ts';

test('a deployment that keeps failing is taken out (503 no_healthy_deployment without an upstream call), then probed back after the cool-down', async () => {
  const clock = new ManualClock(Date.parse('2026-11-25T00:00:00Z'));
  const srv = await startTestServer({ clock });
  try {
    const call = async () => {
      const r = await fetch(`${srv.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${srv.demoKey}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'always-500', messages: [{ role: 'user', content: 'hi' }] }),
      });
      return { status: r.status, body: (await r.json()) as any };
    };
    for (let i = 0; i < 3; i++) assert.equal((await call()).status, 502);
    const upstreamBefore = srv.app.emulator!.stats().requests;
    const open = await call();
    assert.equal(open.status, 503);
    assert.equal(open.body.error.code, 'no_healthy_deployment');
    assert.equal(srv.app.emulator!.stats().requests, upstreamBefore, 'the open breaker sends nothing upstream');
    clock.advance(30_000);
    assert.equal((await call()).status, 502, 'after the cool-down one probe goes upstream');
    assert.equal(srv.app.emulator!.stats().requests, upstreamBefore + 1);
    assert.equal((await call()).status, 503, 'the failed probe reopens the breaker');
    const bal = await srv.admin('GET', `/admin/accounts/${srv.demoAccountId}/balance`);
    assert.equal(
      bal.body.buckets.reduce((s: number, b: any) => s + b.used + b.reserved, 0),
      0,
      'failed requests are not charged',
    );
  } finally {
    await srv.close();
  }
});
