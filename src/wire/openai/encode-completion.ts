import type { CompletionResponse, StreamEvent, Usage } from '../types.ts';
import { openaiFinishReason } from './encode-chat.ts';

/** Legacy completions report only the three totals. */
function encodeCompletionUsage(u: Usage): Record<string, number> {
  return { prompt_tokens: u.tokensInput, completion_tokens: u.tokensOutput, total_tokens: u.tokensInput + u.tokensOutput };
}

/** Canonical completion → `text_completion` body; `model` is the name the client asked for, `id` the one the client sees. */
export function encodeCompletionResponse(res: CompletionResponse, model: string, id: string = res.id): Record<string, unknown> {
  return {
    id,
    object: 'text_completion',
    created: res.createdS,
    model,
    choices: res.choices.map((c, index) => ({ text: c.text, index, logprobs: null, finish_reason: openaiFinishReason(c.finishReason) })),
    usage: encodeCompletionUsage(res.usage),
  };
}

export interface CompletionStreamEncoderOptions {
  id: string;
  model: string;
  createdS: number;
  includeUsage: boolean;
}

/**
 * Canonical stream events → legacy `text_completion` SSE frames: text chunks, one chunk with an empty
 * text and the finish_reason, then (with include_usage) `choices: []` + usage, then [DONE].
 * Reasoning and tool-call events have no place in this format and are dropped.
 */
export class OpenAICompletionStreamEncoder {
  readonly #head: string;
  readonly #tail: string;
  readonly #includeUsage: boolean;
  #finished = false;
  #done = false;
  #usage: Usage | undefined;

  constructor(opts: CompletionStreamEncoderOptions) {
    this.#head = `data: {"id":${JSON.stringify(opts.id)},"object":"text_completion","created":${opts.createdS},"model":${JSON.stringify(opts.model)},"choices":`;
    this.#tail = opts.includeUsage ? ',"usage":null}\n\n' : '}\n\n';
    this.#includeUsage = opts.includeUsage;
  }

  encode(ev: StreamEvent): string {
    if (this.#done) return '';
    if (ev.type === 'usage') {
      this.#usage = ev.usage;
      return '';
    }
    if (this.#finished) return '';
    if (ev.type === 'text') {
      if (ev.text === '') return '';
      return `${this.#head}[{"text":${JSON.stringify(ev.text)},"index":0,"logprobs":null,"finish_reason":null}]${this.#tail}`;
    }
    if (ev.type === 'finish') {
      this.#finished = true;
      return `${this.#head}[{"text":"","index":0,"logprobs":null,"finish_reason":"${openaiFinishReason(ev.finishReason)}"}]${this.#tail}`;
    }
    return '';
  }

  finish(): string {
    if (this.#done) return '';
    let out = this.#finished ? '' : this.encode({ type: 'finish', finishReason: 'stop' });
    if (this.#includeUsage && this.#usage !== undefined) {
      out += `${this.#head}[],"usage":${JSON.stringify(encodeCompletionUsage(this.#usage))}}\n\n`;
    }
    this.#done = true;
    return `${out}data: [DONE]\n\n`;
  }
}
