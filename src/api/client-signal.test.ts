import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { once } from 'node:events';
import { Agent } from 'undici';
import { ClientSignal } from './server.ts';

test('a ClientSignal aborts an undici request waiting for its headers, as an AbortSignal does', async () => {
  let arrived!: () => void;
  const seen = new Promise<void>((r) => {
    arrived = r;
  });
  const server = createServer(() => arrived()); // never answers
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const agent = new Agent();
  try {
    const signal = new ClientSignal();
    const { port } = server.address() as AddressInfo;
    const pending = agent.request({ origin: `http://127.0.0.1:${port}`, path: '/', method: 'GET', signal: signal as unknown as AbortSignal });
    await seen;
    signal.abort();
    await assert.rejects(pending, (e: unknown) => e === signal.reason, "undici rejects with the signal's reason");
    assert.equal(signal.aborted, true);
  } finally {
    await agent.destroy();
    server.closeAllConnections();
    server.close();
  }
});

test('a ClientSignal calls each listener once, forgets removed ones, and is already aborted for late ones', () => {
  const s = new ClientSignal();
  const calls: string[] = [];
  const a = (): void => {
    calls.push('a');
  };
  const b = (): void => {
    calls.push('b');
  };
  s.addEventListener('abort', a);
  s.addEventListener('abort', b);
  s.removeEventListener('abort', a);
  s.abort();
  s.abort();
  assert.deepEqual(calls, ['b']);
  assert.equal(s.aborted, true);
  assert.ok(s.reason instanceof Error);
  s.addEventListener('abort', a);
  assert.deepEqual(calls, ['b'], 'undici checks aborted first; a late listener is not kept');
});
