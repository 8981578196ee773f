import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeCompletionRequest, decodeEmbeddingRequest } from './index.ts';

describe('decodeCompletionRequest', () => {
  test('string and string-array prompts decode with their options; unknown fields go to extra', () => {
    const r = decodeCompletionRequest({
      model: 'gpt-3.5-turbo-instruct',
      prompt: ['a', 'b'],
      max_tokens: 16,
      temperature: 0,
      top_p: 1,
      stop: '\n',
      stream: true,
      stream_options: { include_usage: true },
      echo: true,
      suffix: 'x',
    });
    assert.ok(r.ok);
    assert.deepEqual(r.value, {
      model: 'gpt-3.5-turbo-instruct',
      prompt: ['a', 'b'],
      stream: true,
      includeUsage: true,
      maxTokensOutput: 16,
      temperature: 0,
      topP: 1,
      stop: ['\n'],
      extra: { echo: true, suffix: 'x' },
    });
  });

  test('token-id prompts, a missing prompt and n>1 are invalid_request with the param', () => {
    const cases: [unknown, string][] = [
      [{ model: 'm', prompt: [[1, 2]] }, 'prompt[0]'],
      [{ model: 'm', prompt: [1, 2] }, 'prompt[0]'],
      [{ model: 'm' }, 'prompt'],
      [{ model: 'm', prompt: [] }, 'prompt'],
      [{ model: 'm', prompt: 'x', n: 3 }, 'n'],
      [{ model: 'm', prompt: 'x', max_tokens: 0 }, 'max_tokens'],
    ];
    for (const [body, param] of cases) {
      const r = decodeCompletionRequest(body);
      assert.ok(!r.ok);
      assert.equal(r.details?.['param'], param);
    }
  });
});

describe('decodeEmbeddingRequest', () => {
  test('every OpenAI input shape is accepted', () => {
    for (const input of ['text', ['a', 'b'], [1, 2, 3], [[1], [2, 3]]]) {
      const r = decodeEmbeddingRequest({ model: 'text-embedding-3-small', input });
      assert.ok(r.ok, JSON.stringify(input));
      assert.deepEqual(r.value.input, input);
    }
  });

  test('encoding_format, dimensions and user map; unknown fields go to extra', () => {
    const r = decodeEmbeddingRequest({ model: 'e', input: 'x', encoding_format: 'base64', dimensions: 256, user: 'u', extra_thing: 1 });
    assert.ok(r.ok);
    assert.deepEqual(r.value, { model: 'e', input: 'x', encodingFormat: 'base64', dimensions: 256, user: 'u', extra: { extra_thing: 1 } });
  });

  test('empty or mistyped inputs and bad options are invalid_request with the param', () => {
    const cases: [unknown, string][] = [
      [{ model: 'e' }, 'input'],
      [{ model: 'e', input: '' }, 'input'],
      [{ model: 'e', input: [] }, 'input'],
      [{ model: 'e', input: ['a', 2] }, 'input[1]'],
      [{ model: 'e', input: [[1], []] }, 'input[1]'],
      [{ model: 'e', input: [1, -2] }, 'input[1]'],
      [{ model: 'e', input: 'x', encoding_format: 'int8' }, 'encoding_format'],
      [{ model: 'e', input: 'x', dimensions: 0 }, 'dimensions'],
    ];
    for (const [body, param] of cases) {
      const r = decodeEmbeddingRequest(body);
      assert.ok(!r.ok, JSON.stringify(body));
      assert.equal(r.details?.['param'], param);
    }
  });
});
