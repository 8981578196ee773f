/**
 * Canonical stream events -> Anthropic Messages SSE, the byte-level sequence the official SDKs expect:
 *
 *   message_start
 *   (content_block_start, content_block_delta*, content_block_stop)*   one block per run of text,
 *                                                                      thinking or one tool call
 *   message_delta {stop_reason, stop_sequence:null} + usage
 *   message_stop
 *
 * Hot path: one encoder per streamed response, frames are built by string concatenation with
 * JSON.stringify only on the variable text.
 */
import type { FinishReason, StreamEvent, Usage } from '../types.ts';
import { anthropicStopReason, anthropicUsage } from './encode-response.ts';

type BlockKind = 'text' | 'thinking' | 'tool' | 'native';

export interface AnthropicStreamEncoderOptions {
  /** Message id sent to the client (msg_...). */
  id: string;
  /** Model name sent to the client (the name the client asked for). */
  model: string;
  /**
   * Prompt tokens as estimated before the upstream reported usage; shown in message_start when the upstream
   * reports none up front (an Anthropic upstream does, in its own message_start: that is shown instead).
   * message_delta always carries the final input counts, and the SDKs keep the last value they see.
   */
  inputTokensEstimate: number;
}

const frame = (event: string, data: string): string => `event: ${event}\ndata: ${data}\n\n`;

export class AnthropicStreamEncoder {
  readonly #opts: AnthropicStreamEncoderOptions;
  #started = false;
  #finished = false;
  #nextBlockIndex = 0;
  #openKind: BlockKind | undefined;
  #openIndex = -1;
  /** Canonical tool index -> Anthropic content block index. */
  readonly #toolBlocks = new Map<number, number>();
  #finishReason: FinishReason | undefined;
  #usage: Usage | undefined;
  /** The upstream's usage from its start event (Anthropic message_start). */
  #startUsage: Usage | undefined;

  constructor(opts: AnthropicStreamEncoderOptions) {
    this.#opts = opts;
  }

  /** Frames for one canonical event (possibly ''). */
  encode(ev: StreamEvent): string {
    let out = '';
    if (ev.type === 'usage') this.#usage = ev.usage;
    else if (ev.type === 'start' && ev.usage !== undefined) this.#startUsage = ev.usage;
    if (!this.#started) out += this.#messageStart();
    switch (ev.type) {
      case 'text':
        if (ev.text === '') return out;
        if (this.#openKind !== 'text') out += this.#open('text', '{"type":"text","text":""}');
        return (
          out +
          frame(
            'content_block_delta',
            `{"type":"content_block_delta","index":${this.#openIndex},"delta":{"type":"text_delta","text":${JSON.stringify(ev.text)}}}`,
          )
        );
      case 'reasoning':
        if (ev.block !== undefined) return out + this.#wholeBlock(ev.block);
        if (ev.signature !== undefined) {
          if (this.#openKind !== 'thinking') out += this.#open('thinking', '{"type":"thinking","thinking":"","signature":""}');
          return (
            out +
            frame(
              'content_block_delta',
              `{"type":"content_block_delta","index":${this.#openIndex},"delta":{"type":"signature_delta","signature":${JSON.stringify(ev.signature)}}}`,
            )
          );
        }
        if (ev.text === '') return out;
        if (this.#openKind !== 'thinking') out += this.#open('thinking', '{"type":"thinking","thinking":"","signature":""}');
        return (
          out +
          frame(
            'content_block_delta',
            `{"type":"content_block_delta","index":${this.#openIndex},"delta":{"type":"thinking_delta","thinking":${JSON.stringify(ev.text)}}}`,
          )
        );
      case 'tool_call_start':
        out += this.#open('tool', `{"type":"tool_use","id":${JSON.stringify(ev.id)},"name":${JSON.stringify(ev.name)},"input":{}}`);
        this.#toolBlocks.set(ev.index, this.#openIndex);
        return out;
      case 'tool_call_delta':
        return out + this.#toolDelta(ev.index, ev.argumentsDelta);
      case 'finish':
        this.#finishReason = ev.finishReason;
        // Nothing follows the finish reason but usage: close the block now rather than at finish().
        return out + this.#close();
      default:
        return out;
    }
  }

  /**
   * Closing frames: message_delta (stop reason + final usage) and message_stop. Emitted exactly once,
   * whether usage arrived before or after 'finish'. `fallbackUsage` is used when the upstream never
   * reported usage (the gateway's own count). Returns '' when called again.
   */
  finish(fallbackUsage?: Usage): string {
    if (this.#finished) return '';
    let out = this.#started ? '' : this.#messageStart();
    out += this.#close();
    this.#finished = true;
    const usage = this.#usage ?? fallbackUsage;
    const stopReason = anthropicStopReason(this.#finishReason, this.#toolBlocks.size > 0);
    // message_delta usage is cumulative for the whole message (the SDK overwrites, never adds).
    const usageJson = usage === undefined ? `{"input_tokens":${this.#opts.inputTokensEstimate},"output_tokens":0}` : JSON.stringify(anthropicUsage(usage));
    out += frame('message_delta', `{"type":"message_delta","delta":{"stop_reason":"${stopReason}","stop_sequence":null},"usage":${usageJson}}`);
    return out + frame('message_stop', '{"type":"message_stop"}');
  }

  /** True once finish() produced the closing frames. */
  get isFinished(): boolean {
    return this.#finished;
  }

  #messageStart(): string {
    this.#started = true;
    const reported = this.#usage ?? this.#startUsage;
    const known = reported === undefined ? undefined : anthropicUsage(reported);
    // Like api.anthropic.com: input counts are known up front, output_tokens starts at 1 and the
    // final count comes in message_delta.
    const usage = {
      input_tokens: known?.input_tokens ?? this.#opts.inputTokensEstimate,
      cache_creation_input_tokens: known?.cache_creation_input_tokens ?? 0,
      cache_read_input_tokens: known?.cache_read_input_tokens ?? 0,
      output_tokens: 1,
    };
    const message = {
      id: this.#opts.id,
      type: 'message',
      role: 'assistant',
      model: this.#opts.model,
      content: [],
      stop_reason: null,
      stop_sequence: null,
      usage,
    };
    return frame('message_start', `{"type":"message_start","message":${JSON.stringify(message)}}`);
  }

  #open(kind: BlockKind, blockJson: string): string {
    const out = this.#close();
    this.#openKind = kind;
    this.#openIndex = this.#nextBlockIndex++;
    return out + frame('content_block_start', `{"type":"content_block_start","index":${this.#openIndex},"content_block":${blockJson}}`);
  }

  #close(): string {
    if (this.#openKind === undefined) return '';
    const out = frame('content_block_stop', `{"type":"content_block_stop","index":${this.#openIndex}}`);
    this.#openKind = undefined;
    return out;
  }

  /** A block passed through whole (redacted_thinking, server tool use and results): start + stop. */
  #wholeBlock(block: Record<string, unknown>): string {
    const out = this.#open('native', JSON.stringify(block));
    return out + this.#close();
  }

  #toolDelta(toolIndex: number, argumentsDelta: string): string {
    if (argumentsDelta === '') return '';
    let out = '';
    let blockIndex = this.#toolBlocks.get(toolIndex);
    if (blockIndex === undefined) {
      // Arguments for a call we never saw start (a sloppy upstream): open an anonymous block so no
      // argument text is lost.
      out += this.#open('tool', `{"type":"tool_use","id":"toolu_${toolIndex}","name":"","input":{}}`);
      blockIndex = this.#openIndex;
      this.#toolBlocks.set(toolIndex, blockIndex);
    }
    // Interleaved arguments for an already-closed call (rare; OpenAI streams calls one after another)
    // go to that call's old index: Anthropic blocks cannot be reopened, the official SDKs accumulate
    // by index, and buffering instead would stall every stream.
    return (
      out +
      frame(
        'content_block_delta',
        `{"type":"content_block_delta","index":${blockIndex},"delta":{"type":"input_json_delta","partial_json":${JSON.stringify(argumentsDelta)}}}`,
      )
    );
  }
}
