/**
 * The three targets and the one request every scenario sends to all of them: the same OpenAI chat body,
 * the same model string, the same path; only the bearer differs (TokenGrid needs its real API key, the
 * emulator accepts any non-empty bearer and the min proxy forwards it).
 */
export type TargetName = 'direct' | 'minProxy' | 'tokengrid';

export interface Target {
  name: TargetName;
  label: string;
  /** Origin, e.g. http://127.0.0.1:40123 */
  url: string;
  /** The process whose CPU and memory are measured for this target. */
  serverPid: number;
  headers: Record<string, string>;
}

export const TARGET_ORDER: readonly TargetName[] = ['direct', 'minProxy', 'tokengrid'];
export const LABELS: Record<TargetName, string> = { direct: 'direct (emulator)', minProxy: 'min proxy', tokengrid: 'TokenGrid' };

export const PATH = '/v1/chat/completions';
export const MODEL = 'deepseek-v3.2';

/** Same bytes for every target. max_tokens is above the answer length, so it never truncates. */
export function chatBody(stream: boolean): string {
  return JSON.stringify({
    model: MODEL,
    messages: [
      { role: 'system', content: 'You are a concise assistant.' },
      { role: 'user', content: 'Explain in one paragraph why prepaid token packages are like mobile data plans.' },
    ],
    max_tokens: 256,
    stream,
    ...(stream ? { stream_options: { include_usage: true } } : {}),
  });
}

export function makeTarget(name: TargetName, url: string, serverPid: number, bearer: string): Target {
  return { name, label: LABELS[name], url, serverPid, headers: { 'content-type': 'application/json', authorization: `Bearer ${bearer}` } };
}
