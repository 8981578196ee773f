import { test } from 'node:test';
import assert from 'node:assert/strict';
import { methodUrl } from './http.ts';

test('method URLs add /v1beta unless the base URL already names an API version', () => {
  assert.equal(
    methodUrl('https://generativelanguage.googleapis.com', 'gemini-2.5-flash', 'generateContent'),
    'https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent',
  );
  assert.equal(
    methodUrl('https://generativelanguage.googleapis.com/v1beta/', 'models/gemini-2.5-pro', 'streamGenerateContent', '?alt=sse'),
    'https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse',
  );
  assert.equal(
    methodUrl('https://proxy.example.com/google/v1', 'text-embedding-004', 'embedContent'),
    'https://proxy.example.com/google/v1/models/text-embedding-004:embedContent',
  );
});
