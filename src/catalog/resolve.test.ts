import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { buildCatalog, mappedModelId, resolveModel, stripModelSuffix, type ModelSpec } from './index.ts';

const spec = (id: string, aliases: string[] = []): ModelSpec => ({
  id,
  kind: 'chat',
  vendor: 'v',
  displayName: id,
  aliases,
  groups: [],
  contextWindow: 1000,
  maxOutputTokens: 100,
  capabilities: [],
  deployments: [],
  fallback: [],
  attemptsMax: 1,
  requestsPerCall: 1,
  createdS: 0,
  cost: { currency: 'CNY', inputMicrosPerMillion: 0, outputMicrosPerMillion: 0, cachedInputMicrosPerMillion: 0 },
  coins: { input: { num: 1, den: 1 }, output: { num: 1, den: 1 }, cachedInput: { num: 1, den: 1 }, reasoning: { num: 1, den: 1 } },
});
const catalog = buildCatalog('t', [spec('claude-4.7', ['claude-opus-4-8']), spec('glm-5', ['glm']), spec('deepseek-v3.2')]);
const id = (requested: string, map?: Record<string, string>): string | undefined => {
  const r = resolveModel(catalog, requested, map);
  return r.ok ? r.model.id : undefined;
};

describe('model resolution', () => {
  test('ids and aliases resolve; a [context] suffix is not part of the id', () => {
    assert.equal(id('claude-4.7'), 'claude-4.7');
    assert.equal(id('claude-opus-4-8'), 'claude-4.7');
    assert.equal(id('claude-opus-4-8[1m]'), 'claude-4.7');
    assert.equal(id('claude-opus-9'), undefined);
    assert.equal(stripModelSuffix('a[1m]'), 'a');
    assert.equal(stripModelSuffix('plain'), 'plain');
  });

  test('a package map wins over aliases: exact keys first, then globs in order; its target may be an alias', () => {
    const map = { 'claude-haiku-4-5': 'deepseek-v3.2', 'claude-*': 'glm', '*-codex': 'glm-5' };
    assert.equal(id('claude-opus-4-8[1m]', map), 'glm-5');
    assert.equal(id('claude-haiku-4-5', map), 'deepseek-v3.2');
    assert.equal(id('gpt-5.1-codex', map), 'glm-5');
    assert.equal(id('deepseek-v3.2', map), 'deepseek-v3.2');
    assert.equal(id('claude-4.7', { 'claude-*': 'no-such-model' }), 'claude-4.7', 'a target that does not exist falls back to the id itself');
  });

  test('globs match whole ids, with regex characters taken literally', () => {
    assert.equal(mappedModelId({ 'gpt-5.1*': 'x' }, 'gpt-501'), undefined);
    assert.equal(mappedModelId({ 'gpt-5.1*': 'x' }, 'gpt-5.1-mini'), 'x');
    assert.equal(mappedModelId({ 'o3*': 'x' }, 'foo3'), undefined);
    assert.equal(mappedModelId({ '*': 'x' }, 'anything'), 'x');
    assert.equal(mappedModelId({ constructor: 'x' }, 'toString'), undefined);
  });
});
