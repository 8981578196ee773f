import type { ErrorCode } from '../../core/index.ts';
import type { StreamEvent, Usage } from '../types.ts';
import { encodeOpenAIUsage, openaiFinishReason } from './encode-chat.ts';
import { openaiErrorBody } from './error-body.ts';

export interface ChatStreamEncoderOptions {
  id: string;
  /** The model name the client asked for. */
  model: string;
  createdS: number;
  /** The client's stream_options.include_usage. */
  includeUsage: boolean;
}

const DONE = 'data: [DONE]\n\n';

/**
 * Canonical stream events → `chat.completion.chunk` SSE frames, in OpenAI's order: a first chunk with
 * delta.role, content / reasoning / tool-call deltas, one chunk with finish_reason and an empty delta,
 * then (only with include_usage) one chunk with `choices: []` and the usage, then [DONE].
 * Runs once per upstream chunk: frames are concatenated from a pre-serialised head and small
 * JSON.stringify calls on the variable strings only.
 */
export class OpenAIChatStreamEncoder {
  readonly #head: string;
  /** OpenAI sends `"usage":null` on every chunk but the last when include_usage is on. */
  readonly #tail: string;
  readonly #includeUsage: boolean;
  /**
   * A text frame is #contentHead + JSON.stringify(text) + #deltaTail: two concatenations instead of six (text
   * deltas are most frames, and each concatenation is a string object of garbage).
   */
  readonly #contentHead: string;
  readonly #reasoningHead: string;
  readonly #deltaTail: string;
  #started = false;
  #finished = false;
  #done = false;
  #usage: Usage | undefined;

  constructor(opts: ChatStreamEncoderOptions) {
    this.#head = `data: {"id":${JSON.stringify(opts.id)},"object":"chat.completion.chunk","created":${opts.createdS},"model":${JSON.stringify(opts.model)},"system_fingerprint":null,"choices":`;
    this.#tail = opts.includeUsage ? ',"usage":null}\n\n' : '}\n\n';
    this.#includeUsage = opts.includeUsage;
    this.#contentHead = `${this.#head}[{"index":0,"delta":{"content":`;
    this.#reasoningHead = `${this.#head}[{"index":0,"delta":{"reasoning_content":`;
    this.#deltaTail = `},"logprobs":null,"finish_reason":null}]${this.#tail}`;
  }

  /** Zero or more SSE frames for one event. */
  encode(ev: StreamEvent): string {
    if (this.#done) return '';
    switch (ev.type) {
      case 'start':
        return this.#start();
      case 'usage':
        // Held back: the usage chunk must follow the finish chunk and be sent once, whatever the order.
        this.#usage = ev.usage;
        return '';
      case 'finish':
        if (this.#finished) return '';
        this.#finished = true;
        return `${this.#start()}${this.#head}[{"index":0,"delta":{},"logprobs":null,"finish_reason":"${openaiFinishReason(ev.finishReason)}"}]${this.#tail}`;
      default:
        if (this.#finished) return '';
        return this.#start() + this.#delta(ev);
    }
  }

  /** Remaining frames (role, finish if never sent, usage) and the [DONE] terminator. Idempotent. */
  finish(): string {
    if (this.#done) return '';
    let out = this.#start();
    if (!this.#finished) out += this.encode({ type: 'finish', finishReason: 'stop' });
    // Usage goes out only if the gateway supplied it: a zero would tell the client the request was free.
    if (this.#includeUsage && this.#usage !== undefined) {
      out += `${this.#head}[],"usage":${JSON.stringify(encodeOpenAIUsage(this.#usage))}}\n\n`;
    }
    this.#done = true;
    return out + DONE;
  }

  /**
   * End the stream with an OpenAI error frame (what OpenAI sends when it fails mid-stream; the
   * official SDKs raise it as an APIError) followed by [DONE].
   */
  fail(code: ErrorCode, message: string): string {
    if (this.#done) return '';
    this.#done = true;
    return `data: ${JSON.stringify(openaiErrorBody(code, message))}\n\n${DONE}`;
  }

  #start(): string {
    if (this.#started) return '';
    this.#started = true;
    return `${this.#head}[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]${this.#tail}`;
  }

  #delta(ev: Exclude<StreamEvent, { type: 'start' | 'usage' | 'finish' }>): string {
    let delta: string;
    switch (ev.type) {
      case 'text':
        if (ev.text === '') return '';
        return this.#contentHead + JSON.stringify(ev.text) + this.#deltaTail;
      case 'reasoning':
        if (ev.text === '') return '';
        return this.#reasoningHead + JSON.stringify(ev.text) + this.#deltaTail;
      case 'tool_call_start':
        delta = `{"tool_calls":[{"index":${ev.index},"id":${JSON.stringify(ev.id)},"type":"function","function":{"name":${JSON.stringify(ev.name)},"arguments":""}}]}`;
        break;
      case 'tool_call_delta':
        if (ev.argumentsDelta === '') return '';
        delta = `{"tool_calls":[{"index":${ev.index},"function":{"arguments":${JSON.stringify(ev.argumentsDelta)}}}]}`;
        break;
    }
    return `${this.#head}[{"index":0,"delta":${delta},"logprobs":null,"finish_reason":null}]${this.#tail}`;
  }
}
