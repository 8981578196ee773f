/**
 * Test helpers for the emulator's own tests: a deliberately tiny SSE splitter written here (not the
 * one in wire/) so the tests check raw bytes independently of our codecs.
 */

export interface RawEvent {
  event: string | undefined;
  data: string;
}

/** Splits a complete SSE text into events; accepts \n\n and \r\n\r\n separators. */
export function splitSse(text: string): RawEvent[] {
  const out: RawEvent[] = [];
  for (const block of text.split(/\r?\n\r?\n/)) {
    if (block.trim() === '') continue;
    let event: string | undefined;
    const data: string[] = [];
    for (const line of block.split(/\r?\n/)) {
      if (line.startsWith('event:')) event = line.slice(6).trim();
      else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
    }
    out.push({ event, data: data.join('\n') });
  }
  return out;
}

export function dataJson(events: RawEvent[]): Record<string, unknown>[] {
  return events.filter((e) => e.data !== '[DONE]').map((e) => JSON.parse(e.data) as Record<string, unknown>);
}

export const OPENAI_HEADERS = { 'content-type': 'application/json', authorization: 'Bearer test-key' };
export const ANTHROPIC_HEADERS = { 'content-type': 'application/json', 'x-api-key': 'test-key', 'anthropic-version': '2023-06-01' };
export const GEMINI_HEADERS = { 'content-type': 'application/json', 'x-goog-api-key': 'test-key' };

export async function post(url: string, headers: Record<string, string>, body: unknown): Promise<{ status: number; headers: Headers; text: string }> {
  const res = await fetch(url, { method: 'POST', headers, body: typeof body === 'string' ? body : JSON.stringify(body) });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

export async function postJson(url: string, headers: Record<string, string>, body: unknown): Promise<{ status: number; headers: Headers; json: any }> {
  const r = await post(url, headers, body);
  return { status: r.status, headers: r.headers, json: JSON.parse(r.text) };
}

/** Reads a streamed body until it ends or breaks; `broken` says whether the connection was cut. */
export async function readAll(res: Response): Promise<{ text: string; broken: boolean }> {
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let text = '';
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return { text, broken: false };
      text += decoder.decode(value, { stream: true });
    }
  } catch {
    return { text, broken: true };
  }
}

/** Polls a condition (the server's view of a socket cannot be awaited directly). */
export async function until(cond: () => boolean, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Input tokens the emulator reports: ceil(utf8 bytes / 4) + 4 per message. */
export function expectedInputTokens(texts: string[], extraBytes = 0): number {
  const bytes = texts.reduce((n, t) => n + Buffer.byteLength(t), 0) + extraBytes;
  return Math.ceil(bytes / 4) + 4 * texts.length;
}
