import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { failsAt, parseDirectives } from './directives.ts';
import { argsJsonFromSchema } from './tool-args.ts';
import { PromptMeter, buildAnswer, splitArgs } from './answer.ts';
import { DEFAULT_PACING } from './types.ts';

describe('directives', () => {
  test('a model without @ and no header yields no directives and the same model', () => {
    assert.deepEqual(parseDirectives('glm-5', undefined), { model: 'glm-5', directives: {} });
  });

  test('model suffixes are stripped and parsed; they override the header', () => {
    const r = parseDirectives('m@ttft=50@tokens=100', 'tokens=3; fail=500 ;noUsage');
    assert.equal(r.model, 'm');
    assert.deepEqual(r.directives, { tokens: 100, fail: 500, noUsage: true, ttft: 50 });
  });

  test('keys are case-insensitive, flags accept bare or true, bad values and unknown keys are ignored', () => {
    const r = parseDirectives('m@FailRate=0.25@hang@ignoreMaxTokens=true@tokens=-3@wat=1@cached=x', undefined);
    assert.deepEqual(r.directives, { failRate: 0.25, hang: true, ignoreMaxTokens: true });
  });

  test('failRate fails exactly floor(n*r) of the first n requests, evenly spread', () => {
    const fails = (rate: number, n: number): number[] => Array.from({ length: n }, (_, i) => i + 1).filter((k) => failsAt(k, rate));
    assert.deepEqual(fails(0.25, 12), [4, 8, 12]);
    assert.deepEqual(fails(0.5, 6), [2, 4, 6]);
    assert.deepEqual(fails(1, 3), [1, 2, 3]);
    assert.deepEqual(fails(0, 5), []);
    assert.equal(fails(0.1, 100).length, 10);
  });
});

describe('tool arguments and answers', () => {
  test('arguments come from the schema: string demo, number 42, boolean true, enum first, nested; required properties only', () => {
    const schema = {
      type: 'object',
      required: ['s', 'n', 'i', 'b', 'e', 'o', 'a'],
      properties: {
        skipped: { type: 'boolean' },
        s: { type: 'string' },
        n: { type: 'NUMBER' },
        i: { type: ['integer', 'null'] },
        b: { type: 'boolean' },
        e: { type: 'string', enum: ['x', 'y'] },
        o: { type: 'object', properties: { z: { type: 'string' }, y: { type: 'string' } }, required: ['z'] },
        a: { type: 'array', items: { type: 'integer' } },
      },
    };
    assert.deepEqual(JSON.parse(argsJsonFromSchema(schema)), { s: 'demo', n: 42, i: 42, b: true, e: 'x', o: { z: 'demo' }, a: [42] });
    assert.equal(argsJsonFromSchema(undefined), '{}');
    assert.deepEqual(
      JSON.parse(argsJsonFromSchema({ type: 'object', properties: { run_in_background: { type: 'boolean' } } })),
      {},
      'an optional flag stays unset',
    );
    assert.deepEqual(
      JSON.parse(
        argsJsonFromSchema({ allOf: [{ type: 'object', properties: { a: { type: 'string' } }, required: ['a'] }, { properties: { b: { type: 'string' } } }] }),
      ),
      { a: 'demo' },
    );
    assert.deepEqual(JSON.parse(argsJsonFromSchema(schema, { requiredOnly: false })).skipped, true, 'requiredOnly: false fills every property');
  });

  test('tool arguments split into at least two pieces that join back', () => {
    for (const json of ['{}', '{"a":1}', '{"city":"demo","unit":"celsius"}']) {
      const pieces = splitArgs(json);
      assert.ok(pieces.length >= 2);
      assert.equal(pieces.join(''), json);
    }
  });

  test('input tokens are ceil(utf8 bytes / 4) + 4 per message', () => {
    const m = new PromptMeter();
    m.message();
    m.text('héllo'); // 6 bytes
    m.message();
    m.text('abc');
    assert.equal(m.inputTokens(), Math.ceil(9 / 4) + 8);
  });

  test('ignoreMaxTokens generates the requested tokens past max_tokens and reports them', () => {
    const meter = new PromptMeter();
    meter.text('x');
    const a = buildAnswer({ model: 'm', meter, maxTokens: 3, tool: undefined, directives: { ignoreMaxTokens: true, tokens: 10 }, pacing: DEFAULT_PACING });
    assert.equal(a.tokens.length, 10);
    assert.equal(a.usage.outputTokens, 10);
    assert.equal(a.finish, 'stop');
  });
});
