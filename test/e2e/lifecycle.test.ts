import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { startTestServer } from '../support/server.ts';

const body = (model: string) => JSON.stringify({ model, stream: true, messages: [{ role: 'user', content: 'go' }] });

test('a client that disconnects mid-stream aborts the upstream request', async () => {
  const srv = await startTestServer();
  try {
    const ac = new AbortController();
    const res = await fetch(`${srv.url}/v1/chat/completions`, {
      method: 'POST',
      signal: ac.signal,
      body: body('crawl-stream'),
      headers: { authorization: `Bearer ${srv.demoKey}`, 'content-type': 'application/json' },
    });
    const reader = res.body!.getReader();
    await reader.read();
    ac.abort();
    let aborted = 0;
    for (let i = 0; i < 100 && aborted === 0; i++) {
      await new Promise((r) => setTimeout(r, 20));
      aborted = srv.app.emulator!.stats().aborted;
    }
    assert.equal(aborted, 1, 'the emulator saw its client (the gateway) go away');
  } finally {
    await srv.close();
  }
});

test('graceful shutdown lets an in-flight stream finish, and refuses new requests meanwhile', async () => {
  const srv = await startTestServer();
  const res = await fetch(`${srv.url}/v1/chat/completions`, {
    method: 'POST',
    body: body('slow-stream'),
    headers: { authorization: `Bearer ${srv.demoKey}`, 'content-type': 'application/json' },
  });
  const reader = res.body!.getReader();
  await reader.read();
  const closing = srv.app.close(10_000);
  let text = '';
  const decoder = new TextDecoder();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    text += decoder.decode(value, { stream: true });
  }
  await closing;
  rmSync(srv.dataDir, { recursive: true, force: true });
  assert.ok(text.trimEnd().endsWith('data: [DONE]'), 'the stream ran to its end during the drain');
});
