import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { rejectsWith, scenarioCall, startScenarioUpstream, type ScenarioUpstream } from '../openai-compatible/test-upstream.ts';
import { postJson, readBody } from './index.ts';

let up: ScenarioUpstream;
before(async () => {
  up = await startScenarioUpstream({
    ok: (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"a":1}');
    },
    big: (_req, res) => {
      res.writeHead(200);
      res.end('x'.repeat(5000));
    },
    overloaded: (_req, res) => {
      res.writeHead(529, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { message: 'Overloaded' } }));
    },
    hugeError: (_req, res) => {
      res.writeHead(500);
      res.end('e'.repeat(200_000));
    },
    silent: () => undefined,
    cut: (_req, res) => {
      res.writeHead(200, { 'content-length': '100' });
      res.write('partial');
      setImmediate(() => res.destroy());
    },
  });
});
after(() => up.close());

const post = (scenario: string, over = {}) => {
  const call = scenarioCall(up, scenario, {}, over);
  return {
    call,
    p: postJson(call, {
      url: `http://127.0.0.1:${up.port}/${scenario}`,
      headers: { 'content-type': 'application/json' },
      body: '{}',
      errorDetail: (t) => (JSON.parse(t) as { error: { message: string } }).error.message,
    }),
  };
};

describe('shared provider transport', () => {
  test('a 2xx answer is read whole; over the bound it is malformed', async () => {
    const { call, p } = post('ok');
    assert.equal(await readBody(call, (await p).body, 100), '{"a":1}');
    const b = post('big');
    await rejectsWith(readBody(b.call, (await b.p).body, 1000), 'malformed');
  });

  test('a non-2xx answer is a status error with the upstream message from the adapter dialect', async () => {
    const e = await rejectsWith(post('overloaded').p, 'status', 529);
    assert.match(e.message, /fake answered 529: Overloaded/);
    assert.match(e.body ?? '', /Overloaded/);
  });

  test('an error body is kept bounded (64 KiB) and an unreadable one still gives the status', async () => {
    const e = await rejectsWith(post('hugeError').p, 'status', 500);
    assert.equal(e.body?.length, 64 * 1024);
    assert.match(e.message, /fake answered 500: e+/);
  });

  test('no headers in time is a timeout, a refused connection is connect, a body cut short is disconnect', async () => {
    await rejectsWith(post('silent', { timeoutMsHeaders: 50 }).p, 'timeout');
    const refused = scenarioCall(up, 'ok');
    await rejectsWith(postJson(refused, { url: 'http://127.0.0.1:9/x', headers: {}, body: '{}' }), 'connect');
    const c = post('cut');
    await rejectsWith(readBody(c.call, (await c.p).body, 1000), 'disconnect');
  });

  test("the caller's abort ends the request as aborted, before or after sending", async () => {
    const ac = new AbortController();
    ac.abort();
    await rejectsWith(post('ok', { signal: ac.signal }).p, 'aborted');
    const ac2 = new AbortController();
    const { p } = post('silent', { signal: ac2.signal });
    setImmediate(() => ac2.abort());
    await rejectsWith(p, 'aborted');
  });
});
