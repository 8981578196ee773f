/**
 * The openai-compatible fast paths against their general twins, in one process against a local upstream
 * (ARCHITECTURE.md, "Fast paths"). Interleaved rounds; prints µs per call (median of rounds) and the ratio.
 *   node --import tsx bench/provider-fast-paths.ts [--rounds 7] [--calls 2000]
 * Variants: `handler` = postText/postStream with the LegacyBridge vs undici's supported API (everything else
 * equal); `adapter` = the whole adapter with fastPaths on vs off.
 */
import { createServer } from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { Agent } from 'undici';
import { createOpenAICompatibleAdapter } from '../src/providers/openai-compatible/index.ts';
import { createRequire } from 'node:module';
import { LegacyBridge, TextHandler, postText } from '../src/providers/openai-compatible/dispatch.ts';
import { postStream } from '../src/providers/openai-compatible/dispatch-stream.ts';
import { ChatChunkParser } from '../src/providers/openai-compatible/stream-reader.ts';
import type { UpstreamCall } from '../src/providers/types.ts';

const arg = (name: string, d: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? d : Number(process.argv[i + 1]);
};
const ROUNDS = arg('rounds', 7);
const CALLS = arg('calls', 2000);

const answer = JSON.stringify({
  id: 'chatcmpl-1',
  object: 'chat.completion',
  created: 1,
  model: 'up',
  choices: [{ index: 0, message: { role: 'assistant', content: 'Hello there, how can I help you today?' }, finish_reason: 'stop' }],
  usage: { prompt_tokens: 12, completion_tokens: 9, total_tokens: 21 },
});
const chunk = (delta: object, finish: string | null = null): string =>
  `data: ${JSON.stringify({ id: 'c', object: 'chat.completion.chunk', created: 1, model: 'up', choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
const stream = [
  chunk({ role: 'assistant', content: '' }),
  ...Array.from({ length: 20 }, (_, i) => chunk({ content: `word${i} ` })),
  chunk({}, 'stop'),
  'data: [DONE]\n\n',
].join('');
const headers = {
  'content-type': 'application/json',
  'x-request-id': 'r',
  server: 'bench',
  date: new Date().toUTCString(),
  'cache-control': 'no-cache',
  'x-ratelimit-remaining': '1000',
};

const server = createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    if (req.url!.includes('stream')) {
      res.writeHead(200, { ...headers, 'content-type': 'text/event-stream' });
      res.end(stream);
    } else {
      res.writeHead(200, headers);
      res.end(answer);
    }
  });
});
server.listen(0, '127.0.0.1');
await once(server, 'listening');
const port = (server.address() as AddressInfo).port;
const agent = new Agent({ connections: 16 });
const call = (path: string): UpstreamCall => ({
  provider: { name: 'bench', adapter: 'openai-compatible', baseUrl: `http://127.0.0.1:${port}/${path}` },
  upstreamModel: 'up',
  dispatcher: agent,
  signal: new AbortController().signal,
  requestId: 'r',
  timeoutMsHeaders: 5000,
  timeoutMsBody: 5000,
});
const req = {
  model: 'm',
  messages: [{ role: 'user' as const, content: [{ type: 'text' as const, text: 'hi' }] }],
  stream: false,
  includeUsage: false,
  maxTokensOutput: 64,
  extra: {},
};
const adapters = { on: createOpenAICompatibleAdapter({ fastPaths: true }), off: createOpenAICompatibleAdapter({ fastPaths: false }) };
const defaults = { id: 'r', model: 'up', createdS: 1 };

// What undici's HTTP/1 client calls for one response, without the network: the bridge's cost against UnwrapHandler's.
const UnwrapHandler = createRequire(import.meta.url)('undici/lib/handler/unwrap-handler.js') as { unwrap(h: object): LegacyHandler };
interface LegacyHandler {
  onConnect(a: () => void): void;
  onHeaders(s: number, raw: Buffer[], resume: () => void, m: string): boolean;
  onData(c: Buffer): boolean;
  onComplete(t: Buffer[]): void;
}
const rawHeaders = Object.entries(headers).flatMap(([k, v]) => [Buffer.from(k), Buffer.from(v)]);
const body = Buffer.from(answer);
const noop = (): void => undefined;
function callbacksOnly(fast: boolean): Promise<void> {
  for (let i = 0; i < 50; i++) {
    const h = new TextHandler(call('json'), 1 << 20, noop, noop);
    const legacy = fast ? new LegacyBridge(h) : UnwrapHandler.unwrap(h);
    legacy.onConnect(noop);
    legacy.onHeaders(200, rawHeaders, noop, 'OK');
    legacy.onData(body);
    legacy.onComplete([]);
  }
  return Promise.resolve();
}

type Variant = (fast: boolean) => Promise<unknown>;
const variants: Record<string, Variant> = {
  'bridge, 50 responses': callbacksOnly,
  'handler, non-streaming': (fast) => postText(call('json'), '/chat/completions', '{}', 'application/json', 1 << 20, fast),
  'handler, streaming': async (fast) => {
    const s = await postStream(call('stream'), '/chat/completions', '{}', new ChatChunkParser(defaults), 1 << 20, fast);
    if ('batches' in s)
      for await (const _ of s.batches) {
        /* drain */
      }
  },
  'adapter, non-streaming': (fast) => adapters[fast ? 'on' : 'off'].chat(call('json'), req),
  'adapter, streaming': async (fast) => {
    const s = await adapters[fast ? 'on' : 'off'].chatStream(call('stream'), { ...req, stream: true });
    for await (const _ of s.events) {
      /* drain */
    }
  },
};

async function timeOf(v: Variant, fast: boolean): Promise<number> {
  const t0 = process.hrtime.bigint();
  // 8 in flight, as a loaded gateway would have.
  let next = 0;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (next++ < CALLS) await v(fast);
    }),
  );
  return Number(process.hrtime.bigint() - t0) / 1000 / CALLS;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
for (const [name, v] of Object.entries(variants)) {
  await timeOf(v, true);
  await timeOf(v, false); // warm-up
  const on: number[] = [];
  const off: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    if (r % 2 === 0) {
      on.push(await timeOf(v, true));
      off.push(await timeOf(v, false));
    } else {
      off.push(await timeOf(v, false));
      on.push(await timeOf(v, true));
    }
  }
  console.log(
    `${name.padEnd(24)} fast ${median(on).toFixed(1)} µs/call, general ${median(off).toFixed(1)} µs/call, fast/general ${(median(on) / median(off)).toFixed(3)} (per-round ratios ${on.map((x, i) => (x / off[i]!).toFixed(2)).join(' ')})`,
  );
}
await agent.close();
server.close();
