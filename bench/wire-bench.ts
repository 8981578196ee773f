/**
 * The OpenAI-in / OpenAI-compatible-out translation work of one non-streaming request, in one process:
 * parse + decode + estimate the client's body, write the upstream body, read the upstream answer, write the
 * client's answer. Two variants on the same bytes, alternated in rounds:
 *   fast    - what the gateway does (buildChatBodyJson, parsePlainChatResponse, encodeChatResponseJson);
 *   general - the object-tree path the fast paths are tested against (JSON.stringify(buildChatBody(...)),
 *             parseChatResponse(JSON.parse(...)), JSON.stringify(encodeChatResponse(...))).
 * The answer is the emulator's real answer to the bench's request (bench/lib/targets.ts chatBody).
 *
 *   flock /tmp/bench.lock node --import tsx bench/wire-bench.ts [--rounds 7] [--n 20000]
 *
 * Prints the median microseconds per request of each variant. Never part of `npm test`.
 */
import os from 'node:os';
import { decodeChatRequest, encodeChatResponse, encodeChatResponseJson } from '../src/wire/openai/index.ts';
import { estimateChatInputTokens, type ChatRequest, type ChatResponse } from '../src/wire/index.ts';
import { buildChatBody, buildChatBodyJson } from '../src/providers/openai-compatible/build-request.ts';
import { parseChatResponse, parsePlainChatResponse } from '../src/providers/openai-compatible/parse-response.ts';
import type { UpstreamCall } from '../src/providers/index.ts';
import { detectPinning, spawnEmulator, stopAll } from './lib/procs.ts';
import { chatBody, PATH } from './lib/targets.ts';
import { arg } from './lib/args.ts';

const rounds = Number(arg('rounds', '7'));
const n = Number(arg('n', '20000'));

const pin = detectPinning(os.cpus().length);
const emulator = await spawnEmulator(pin);
const clientBody = chatBody(false);
let answer: string;
try {
  const res = await fetch(emulator.info.url + PATH, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: 'Bearer bench' },
    body: clientBody,
  });
  answer = await res.text();
  if (res.status !== 200) throw new Error(`emulator answered ${res.status}: ${answer.slice(0, 200)}`);
} finally {
  await stopAll();
}

const call = { provider: { baseUrl: 'http://127.0.0.1:1/v1' }, upstreamModel: 'deepseek-v3.2' } as unknown as UpstreamCall;
const defaults = { id: 'chatcmpl-x', model: 'deepseek-v3.2', createdS: 0 };
const decode = (): ChatRequest => {
  const r = decodeChatRequest(JSON.parse(clientBody));
  if (!r.ok) throw new Error(r.message);
  return r.value;
};
if (parsePlainChatResponse(answer) === undefined) throw new Error('the emulator answer does not take the fast path; this bench would measure nothing');

let sink = 0;
function fast(): void {
  const req = decode();
  sink += estimateChatInputTokens(req);
  sink += buildChatBodyJson(call, { ...req, maxTokensOutput: 256, includeUsage: true }, false).length;
  const res: ChatResponse = parsePlainChatResponse(answer)!;
  sink += encodeChatResponseJson(res, req.model, 'chatcmpl-req_1').length;
}
function general(): void {
  const req = decode();
  sink += estimateChatInputTokens(req);
  sink += JSON.stringify(buildChatBody(call, { ...req, maxTokensOutput: 256, includeUsage: true }, false)).length;
  const res = parseChatResponse(JSON.parse(answer), defaults);
  sink += JSON.stringify(encodeChatResponse(res, req.model, 'chatcmpl-req_1')).length;
}

const time = (f: () => void): number => {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) f();
  return Number(process.hrtime.bigint() - t0) / 1000 / n;
};
for (let i = 0; i < 3; i++) {
  time(fast);
  time(general);
} // warm-up: let V8 optimize both
const us: Record<'fast' | 'general', number[]> = { fast: [], general: [] };
for (let r = 0; r < rounds; r++) {
  const order = r % 2 === 0 ? (['fast', 'general'] as const) : (['general', 'fast'] as const);
  for (const v of order) us[v].push(time(v === 'fast' ? fast : general));
}
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
console.log(
  `wire path per non-streaming request (${rounds} rounds x ${n}; answer ${answer.length} chars): fast ${median(us.fast).toFixed(2)} us, general ${median(us.general).toFixed(2)} us; per round fast ${us.fast.map((v) => v.toFixed(2)).join(' ')}, general ${us.general.map((v) => v.toFixed(2)).join(' ')}`,
);
if (sink === 0) throw new Error('nothing was produced'); // uses every result, so no step can be optimized away
