import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { SseParser, type SseEvent } from './sse.ts';

/** The WHATWG rules applied to a whole text at once (the incremental parser must agree with it). */
function referenceParse(text: string): SseEvent[] {
  const out: SseEvent[] = [];
  let data: string[] = [];
  let event: string | undefined;
  const dispatch = (): void => {
    if (data.length > 0) out.push(event === undefined ? { data: data.join('\n') } : { event, data: data.join('\n') });
    data = [];
    event = undefined;
  };
  for (const line of text.split(/\r\n|\r|\n/)) {
    if (line === '') {
      dispatch();
      continue;
    }
    if (line.startsWith(':')) continue;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') data.push(value);
    else if (field === 'event') event = value;
  }
  dispatch();
  return out;
}

function parseInChunks(bytes: Uint8Array, cuts: number[]): SseEvent[] {
  const p = new SseParser();
  const out: SseEvent[] = [];
  let start = 0;
  for (const cut of [...cuts].sort((a, b) => a - b)) {
    out.push(...p.push(bytes.subarray(start, cut)));
    start = cut;
  }
  out.push(...p.push(bytes.subarray(start)));
  out.push(...p.end());
  return out;
}

describe('SseParser', () => {
  test('parses data lines, multi-line data, event names and comments', () => {
    const p = new SseParser();
    const events = [...p.push('data: {"a":1}\n\n: keep-alive\n\nevent: error\ndata: x\ndata:y\n\ndata\n\n'), ...p.end()];
    assert.deepEqual(events, [{ data: '{"a":1}' }, { event: 'error', data: 'x\ny' }, { data: '' }]);
  });

  test('accepts \\r\\n and lone \\r line ends, also when a \\r\\n is split across chunks', () => {
    const p = new SseParser();
    const events = [...p.push('data: a\r'), ...p.push('\n\r\ndata: b\r\rdata: c\n'), ...p.push('\n'), ...p.end()];
    assert.deepEqual(events, [{ data: 'a' }, { data: 'b' }, { data: 'c' }]);
  });

  test('dispatches an event that lacks its final blank line at end of stream', () => {
    const p = new SseParser();
    assert.deepEqual(p.push('data: [DONE]'), []);
    assert.deepEqual(p.end(), [{ data: '[DONE]' }]);
  });

  test('gives the same events whatever the byte chunking (multi-byte characters cut in half included)', () => {
    const line = fc.oneof(
      fc.string({ unit: 'grapheme', maxLength: 12 }).map((s) => `data: ${s.replace(/[\r\n]/g, '')}`),
      fc.constantFrom('', ': comment', 'event: error', 'data', 'data:x', 'id: 7', 'retry: 10'),
    );
    const eol = fc.constantFrom('\n', '\r\n', '\r');
    fc.assert(
      fc.property(fc.array(fc.tuple(line, eol), { maxLength: 20 }), fc.array(fc.nat(), { maxLength: 8 }), (lines, rawCuts) => {
        let text = lines.map(([l, e]) => l + e).join('');
        if (text.endsWith('\r')) text += '\n'; // a trailing lone \r is a line end only once more bytes arrive
        const bytes = new TextEncoder().encode(text);
        const cuts = rawCuts.map((c) => (bytes.length === 0 ? 0 : c % bytes.length));
        assert.deepEqual(parseInChunks(bytes, cuts), referenceParse(text));
      }),
      { numRuns: 500 },
    );
  });

  test('refuses a line longer than the limit', () => {
    const p = new SseParser(16);
    assert.throws(() => p.push('data: 0123456789abcdef'), /size limit/);
  });
});
