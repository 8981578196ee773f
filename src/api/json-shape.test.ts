import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { checkJsonShape } from './http.ts';

const depthOf = (v: unknown): number => (v !== null && typeof v === 'object' ? 1 + Math.max(0, ...Object.values(v as object).map(depthOf)) : 0);

test('brackets, quotes and escapes inside strings are not structure', () => {
  assert.equal(checkJsonShape('{"a":"[[[{{{\\\\\\"","b":["]]}}"]}', 2, true), undefined);
  assert.match(checkJsonShape('[[["x"]]]', 2, false)!, /deeper than 2/);
  assert.equal(checkJsonShape('[[["x"]]]', 3, false), undefined);
});

test('duplicate keys are found per object, including escaped spellings, and not across objects', () => {
  assert.match(checkJsonShape('{"a":1,"b":{"a":2},"a":3}', 10, true)!, /repeats the key "a"/);
  assert.match(checkJsonShape('{"x":{"k":1,"\\u006b":2}}', 10, true)!, /repeats the key "k"/);
  assert.equal(checkJsonShape('[{"a":1},{"a":2}]', 10, true), undefined);
  assert.equal(checkJsonShape('{"a":["a","a"],"b":"a"}', 10, true), undefined, 'string values are not keys');
  assert.equal(checkJsonShape('{"a":1,"a":2}', 10, false), undefined, 'only when asked');
});

test('on any JSON text JSON.stringify makes: no duplicate is reported and the depth limit is exact', () => {
  fc.assert(
    fc.property(fc.jsonValue({ maxDepth: 8 }), (v) => {
      const text = JSON.stringify(v);
      const d = depthOf(v);
      assert.equal(checkJsonShape(text, d, true), undefined);
      if (d > 0) assert.match(checkJsonShape(text, d - 1, false)!, /deeper than/);
    }),
    { numRuns: 300 },
  );
});
