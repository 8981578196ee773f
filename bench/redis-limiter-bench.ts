/**
 * The shared limiter's cost per request (issue 15 item 2): admits + done through `RedisLimiter` (one Lua script per
 * admit, one per done) against the local `RateLimiter`, `--inflight` requests at a time over two limiter instances
 * ("nodes") on one Redis. Usage: node --import tsx bench/redis-limiter-bench.ts [--requests 20000] [--inflight 64]
 * [--url redis://127.0.0.1:6379]. Uses a random key prefix and deletes its keys at the end.
 */
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { systemClock } from '../src/core/index.ts';
import { RateLimiter, type Limiter } from '../src/gateway/index.ts';
import { connectRedis, RedisLimiter } from '../src/store/redis/index.ts';

const { values } = parseArgs({ options: { requests: { type: 'string' }, inflight: { type: 'string' }, url: { type: 'string' } } });
const total = Number(values.requests ?? 20_000);
const inflight = Number(values.inflight ?? 64);
const url = values.url ?? 'redis://127.0.0.1:6379';
const prefix = `tgbench${randomBytes(4).toString('hex')}:`;
const keyLimits = { requestsPerMinute: 1e9, tokensPerMinute: 1e12, concurrentRequests: 1e6 };
const planLimits = { concurrentRequests: 1e6 };

async function run(name: string, nodes: Limiter[]): Promise<void> {
  let next = 0;
  const lat: number[] = [];
  const t0 = performance.now();
  const worker = async (): Promise<void> => {
    while (next < total) {
      const i = next++;
      const l = nodes[i % nodes.length]!;
      const s = performance.now();
      const r = l.admit(`req_${i}`, `key_${i % 10}`, keyLimits, `acct_${i % 10}`, planLimits, 100, Date.now());
      const c = r instanceof Promise ? await r : r;
      lat.push(performance.now() - s);
      if (!c.ok) throw new Error(c.message);
      l.done(`req_${i}`, `key_${i % 10}`, `acct_${i % 10}`, 100, 80, Date.now());
    }
  };
  await Promise.all(Array.from({ length: inflight }, worker));
  const ms = performance.now() - t0;
  lat.sort((a, b) => a - b);
  const q = (p: number): string => lat[Math.floor(p * (lat.length - 1))]!.toFixed(3);
  console.log(`${name}: ${total} admit+done in ${ms.toFixed(0)} ms = ${Math.round((total / ms) * 1000)}/s; admit p50 ${q(0.5)} ms, p99 ${q(0.99)} ms`);
}

await run('local RateLimiter (1 node)', [new RateLimiter()]);
const conns = [await connectRedis(url), await connectRedis(url)];
const redisNodes = conns.map((redis) => new RedisLimiter({ redis, clock: systemClock, prefix, renew: false }));
await run(`RedisLimiter (2 nodes, ${inflight} in flight)`, redisNodes);
await new Promise((r) => setTimeout(r, 200)); // the last fire-and-forget `done`s
let cursor = '0';
do {
  const [nextCursor, keys] = await conns[0]!.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
  if (keys.length > 0) await conns[0]!.del(...keys);
  cursor = nextCursor;
} while (cursor !== '0');
for (const c of conns) c.disconnect();
