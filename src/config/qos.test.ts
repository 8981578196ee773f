import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { configSchema, formatIssues, resolveConfig } from './index.ts';

const model = (deployments: unknown[]): unknown => ({
  vendor: 'v',
  contextWindow: 1000,
  maxOutputTokens: 100,
  deployments,
  cost: { input: 1, output: 1 },
  coins: { input: 1, output: 1 },
});

function resolve(providers: Record<string, unknown>, models: Record<string, unknown>) {
  return resolveConfig(configSchema.parse({ providers, models }), {});
}

describe('qos limits in tokengrid.yaml', () => {
  test('absent by default: no deployment has a limit (today’s behaviour)', () => {
    const c = resolve({ mock: { adapter: 'mock' } }, { m: model([{ provider: 'mock', region: 'cn' }]) });
    assert.equal(c.catalog.models.get('m')!.deployments[0]!.qos, undefined);
  });

  test("a provider's limit is one pool shared by its deployments; a deployment's own limit is its own pool and wins", () => {
    const c = resolve(
      { mock: { adapter: 'mock', qos: { maxConcurrent: 4 } } },
      {
        a: model([{ provider: 'mock', upstreamModel: 'a', region: 'cn' }]),
        b: model([{ provider: 'mock', upstreamModel: 'b', region: 'cn', qos: { maxConcurrent: 2, queueMax: 3, queueTimeoutMs: 500, reservedForPriority: 1 } }]),
      },
    );
    assert.deepEqual(c.catalog.models.get('a')!.deployments[0]!.qos, {
      key: 'provider:mock',
      maxConcurrent: 4,
      queueMax: 32,
      queueTimeoutMs: 10_000,
      reservedForPriority: 0,
    });
    assert.deepEqual(c.catalog.models.get('b')!.deployments[0]!.qos, {
      key: 'mock/b@cn',
      maxConcurrent: 2,
      queueMax: 3,
      queueTimeoutMs: 500,
      reservedForPriority: 1,
    });
  });

  test('a model served by the emulator fallback takes the mock provider’s limit', () => {
    const c = resolve(
      {
        vendor: { adapter: 'openai-compatible', baseUrl: 'https://x.example/v1', apiKeyEnv: 'NOPE_KEY' },
        mock: { adapter: 'mock', qos: { maxConcurrent: 3 } },
      },
      { m: model([{ provider: 'vendor', region: 'cn' }]) },
    );
    assert.equal(c.catalog.models.get('m')!.deployments[0]!.qos?.key, 'provider:mock');
  });

  test('bad limits are refused with the path named', () => {
    const bad = (qos: unknown): string => {
      const r = configSchema.safeParse({ providers: { mock: { adapter: 'mock', qos } }, models: {} });
      assert.equal(r.success, false);
      return formatIssues(r.error!);
    };
    assert.match(
      bad({ maxConcurrent: 2, reservedForPriority: 2 }),
      /providers\.mock\.qos\.reservedForPriority: reservedForPriority must be below maxConcurrent/,
    );
    assert.match(bad({ maxConcurrent: 0 }), /providers\.mock\.qos\.maxConcurrent/);
    assert.match(bad({ maxConcurrent: 1, queueTimeoutMs: 3_600_000 }), /queueTimeoutMs/);
    assert.match(bad({ maxConcurrent: 1, burst: 3 }), /Unrecognized key/);
  });
});
