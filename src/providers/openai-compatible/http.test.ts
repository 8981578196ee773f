import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { once } from 'node:events';
import { Agent } from 'undici';
import type { ProviderConfig, UpstreamCall } from '../types.ts';
import { answerJson, postText } from './dispatch.ts';

test('postText follows a provider whose base URL, key or headers change (its cached request target is rebuilt)', async () => {
  const seen: { url: string; headers: IncomingHttpHeaders; body: string }[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => {
      body += c.toString();
    });
    req.on('end', () => {
      seen.push({ url: req.url ?? '', headers: req.headers, body });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"ok":true}');
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  const dispatcher = new Agent();
  const provider: ProviderConfig = { name: 'p', adapter: 'openai-compatible', baseUrl: `http://127.0.0.1:${port}/v1/`, apiKey: 'k1' };
  const call: UpstreamCall = {
    provider,
    upstreamModel: 'up',
    dispatcher,
    signal: new AbortController().signal,
    requestId: 'req_1',
    timeoutMsHeaders: 5000,
    timeoutMsBody: 5000,
  };
  try {
    assert.deepEqual(answerJson(await postText(call, '/chat/completions', JSON.stringify({ a: 1 }), 'application/json', 1024), call), { ok: true });
    provider.baseUrl = `http://127.0.0.1:${port}/v2?api-version=7`;
    provider.apiKey = 'k2';
    await postText(call, '/chat/completions', JSON.stringify({ a: 2 }), 'text/event-stream', 1024);
    provider.headers = { Authorization: 'Token custom', 'X-Extra': 'yes' };
    await postText(call, '/embeddings', JSON.stringify({ a: 3 }), 'application/json', 1024);
    assert.deepEqual(
      seen.map((s) => [s.url, s.headers['authorization'], s.headers['accept'], s.headers['x-extra'], s.body]),
      [
        ['/v1/chat/completions', 'Bearer k1', 'application/json', undefined, '{"a":1}'],
        // The path is appended to the base URL as text, as before (a query on the base URL stays where it was).
        ['/v2?api-version=7/chat/completions', 'Bearer k2', 'text/event-stream', undefined, '{"a":2}'],
        ['/v2?api-version=7/embeddings', 'Token custom', 'application/json', 'yes', '{"a":3}'],
      ],
    );
    assert.equal(seen[0]!.headers['content-type'], 'application/json');
  } finally {
    await dispatcher.close();
    server.close();
  }
});
