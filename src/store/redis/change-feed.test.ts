import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Change } from '../../core/index.ts';
import { decodeChange, encodeChange, MemoryChangeFeed } from '../../core/index.ts';
import { RedisChangeFeed } from './change-feed.ts';
import { testRedis, type TestRedis } from './test-kit.ts';

const env = await testRedis();
const skip = typeof env === 'string' ? env : false;

/** Resolves with the first `n` changes the feed delivers (or rejects after 2 s: a lost message fails the test). */
function collect(feed: { subscribe(h: (c: Change) => void): () => void }, n: number): Promise<Change[]> {
  return new Promise((resolve, reject) => {
    const got: Change[] = [];
    const timer = setTimeout(() => reject(new Error(`only ${got.length} of ${n} changes arrived: ${JSON.stringify(got)}`)), 2_000);
    const off = feed.subscribe((c) => {
      got.push(c);
      if (got.length === n) {
        clearTimeout(timer);
        off();
        resolve(got);
      }
    });
  });
}

describe('RedisChangeFeed: a change on one node reaches every node', { skip }, () => {
  const r = env as TestRedis;
  after(async () => {
    if (typeof env !== 'string') await r.cleanup();
  });

  const open = async (nodeId: string) => RedisChangeFeed.open({ publisher: await r.connect(), subscriber: await r.connect(), nodeId, prefix: r.prefix });

  test('a key revocation published by node A arrives at B and C (and at A, stamped with its origin)', async () => {
    const [a, b, c] = await Promise.all([open('node-a'), open('node-b'), open('node-c')]);
    const arrivals = Promise.all([collect(a, 1), collect(b, 1), collect(c, 1)]);
    await a.publish('keys', 'key_revoked');
    for (const got of await arrivals) assert.deepEqual(got, [{ topic: 'keys', id: 'key_revoked', origin: 'node-a' }]);
    await Promise.all([a.close(), b.close(), c.close()]);
  });

  test('feeds with another prefix do not hear each other (tests and deployments stay apart)', async () => {
    const a = await open('node-a');
    const other = await RedisChangeFeed.open({ publisher: await r.connect(), subscriber: await r.connect(), nodeId: 'x', prefix: `${r.prefix}other:` });
    const heard: Change[] = [];
    other.subscribe((c) => heard.push(c));
    const own = collect(a, 1);
    await a.publish('catalog');
    await own;
    await new Promise((res) => setTimeout(res, 100));
    assert.deepEqual(heard, []);
    await Promise.all([a.close(), other.close()]);
  });

  test('after its connection was cut, a node is told to refresh every topic (what was published meanwhile is lost)', async () => {
    const sub = await r.connect();
    const id = await sub.client('ID');
    const feed = await RedisChangeFeed.open({ publisher: await r.connect(), subscriber: sub, nodeId: 'node-r', prefix: r.prefix });
    const refresh = collect(feed, 5);
    // Kill this connection on the server side; ioredis reconnects and resubscribes.
    const admin = await r.connect();
    await admin.client('KILL', 'ID', String(id));
    const got = await refresh;
    assert.deepEqual(got.map((c) => `${c.topic}:${c.origin}`).sort(), ['accounts:*', 'catalog:*', 'keys:*', 'offers:*', 'plans:*']);
    // And it hears new changes again.
    const next = collect(feed, 1);
    await admin.publish(feed.channel, encodeChange({ topic: 'plans', id: 'acc_1', origin: 'node-z' }));
    assert.deepEqual(await next, [{ topic: 'plans', id: 'acc_1', origin: 'node-z' }]);
    await feed.close();
  });
});

describe('change wire form and the in-process feed', () => {
  test('decodeChange refuses what another program might publish on the channel, without throwing', () => {
    for (const bad of ['', 'nope', '[]', '{"t":"keys"}', '{"t":"money","o":"a"}', '{"t":"keys","o":"a","i":5}'])
      assert.equal(decodeChange(bad), undefined, bad);
    assert.deepEqual(decodeChange(encodeChange({ topic: 'offers', origin: 'n' })), { topic: 'offers', origin: 'n' });
  });

  test('MemoryChangeFeed: feeds over one hub hear each other; a closed one hears nothing', async () => {
    const hub = new Set<MemoryChangeFeed>();
    const a = new MemoryChangeFeed('a', hub);
    const b = new MemoryChangeFeed('b', hub);
    const heard: string[] = [];
    b.subscribe((c) => heard.push(`${c.topic}/${c.id}/${c.origin}`));
    await a.publish('keys', 'k1');
    await b.close();
    await a.publish('keys', 'k2');
    assert.deepEqual(heard, ['keys/k1/a']);
  });
});
