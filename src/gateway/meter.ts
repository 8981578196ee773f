import {
  cutTextAtTokens,
  meterTextTokens,
  TextMeter,
  zeroUsage,
  type ChatResponse,
  type CompletionResponse,
  type StreamEvent,
  type Usage,
} from '../wire/index.ts';
import type { RequestStatus } from './ports.ts';

/**
 * The meter: what an answer's output costs, and what to do with each streamed event. Pure (no I/O, no
 * clock, no charging calls): the lifecycle in gateway.ts asks it, then acts (delivers, extends, cuts).
 *
 * Output is metered over the accumulated text, not chunk by chunk (issue 12, finding 4).
 */

/** What the lifecycle does with one streamed event. */
export type MeterStep = 'deliver' | 'extend' | 'truncate';

/** What a charging extension returned (null: refused, nothing more will be granted). */
export interface Extension {
  tokensOutputGranted: number;
  final: boolean;
}

/**
 * The stream meter, a state machine: `onEvent(ev)` says `extend` (ask charging for another slice first),
 * `truncate` (the event would cross what can be paid: end the stream at the grant) or `deliver`; after an
 * extension, `extended(r)` says `deliver` or `truncate`; after delivering, `delivered(ev)` counts the event.
 * One object per stream, no closures.
 */
export class StreamMeter {
  /** Output tokens delivered so far (what a cut stream is charged). */
  metered = 0;
  /** Output tokens the reservation covers now. */
  granted: number;
  /** No more extensions: charging said final, or the grant reached the request's maximum. */
  final: boolean;
  /** A finish event was delivered. */
  finished = false;
  /** The upstream's own usage event: held back, re-emitted once after settlement. */
  upstreamUsage: Usage | undefined = undefined;
  #extendAt: number;
  readonly #max: number;
  readonly #fraction: number;
  readonly #text = new TextMeter();
  #args: TextMeter | undefined = undefined;
  #textTokens = 0;
  #argsTokens = 0;
  #toolStarts = 0;
  /**
   * Verbatim Anthropic blocks (redacted_thinking, server_tool_use, *_tool_result) count against the grant
   * (issue 12 attack report F1); tool results are relayed, not generated, so they stay out of the output the
   * usage floor is measured on (`generated`).
   */
  #blockTokens = 0;
  #resultTokens = 0;
  /** Tokens of the event under decision (not yet delivered). */
  #pending = 0;
  /** The part of #pending that is a relayed tool result. */
  #pendingResult = 0;

  constructor(granted: number, max: number, extendAtFraction: number) {
    this.granted = granted;
    this.#max = max;
    this.#fraction = extendAtFraction;
    this.final = granted >= max;
    this.#extendAt = Math.floor(granted * extendAtFraction);
  }

  /** Output tokens delivered that the model generated (delivered, less relayed tool results): the usage floor's base. */
  get generated(): number {
    return this.metered - this.#resultTokens;
  }

  onEvent(ev: StreamEvent): MeterStep {
    this.#pendingResult = 0;
    if (ev.type === 'reasoning' && ev.block !== undefined) {
      const n = anthropicBlockTokens(ev.block);
      this.#blockTokens += n;
      if (isToolResultBlock(ev.block)) this.#pendingResult = n;
    }
    if (ev.type === 'text' || ev.type === 'reasoning') this.#textTokens = this.#text.add(ev.text);
    else if (ev.type === 'tool_call_delta') this.#argsTokens = (this.#args ??= new TextMeter()).add(ev.argumentsDelta);
    else if (ev.type === 'tool_call_start') this.#toolStarts++;
    this.#pending = this.#textTokens + this.#argsTokens + 3 * this.#toolStarts + this.#blockTokens - this.metered;
    if (!this.final && this.metered + this.#pending >= this.#extendAt) return 'extend';
    return this.#decide();
  }

  /** The extension's answer for the event under decision. */
  extended(r: Extension | null): 'deliver' | 'truncate' {
    if (r !== null) {
      this.granted = r.tokensOutputGranted;
      this.final = r.final || this.granted >= this.#max;
      this.#extendAt = Math.floor(this.granted * this.#fraction);
    } else {
      this.final = true;
    }
    return this.#decide();
  }

  #decide(): 'deliver' | 'truncate' {
    // Out of balance: the event that would cross the grant is not delivered, so what was delivered is charged.
    return this.final && this.metered + this.#pending > this.granted && !this.finished ? 'truncate' : 'deliver';
  }

  /** The event under decision was delivered (a usage event is only held). */
  delivered(ev: StreamEvent): void {
    this.metered += this.#pending;
    this.#resultTokens += this.#pendingResult;
    this.#pending = 0;
    this.#pendingResult = 0;
    if (ev.type === 'finish') this.finished = true;
    else if (ev.type === 'usage') this.upstreamUsage = ev.usage;
  }

  /** The stream was ended here by a finish the gateway wrote (cut at the grant, or a missing finish). */
  closedByGateway(): void {
    this.#pending = 0;
    this.#pendingResult = 0;
    this.finished = true;
  }

  /** The upstream's usage is whole and can be settled as reported. */
  reported(status: RequestStatus): boolean {
    const u = this.upstreamUsage;
    return status === 'ok' && u !== undefined && (u.tokensInput > 0 || u.tokensOutput > 0);
  }

  /** What is settled: the upstream's usage when whole, otherwise the estimate (never less output than delivered). */
  usage(status: RequestStatus, tokensInputEstimate: number): Usage {
    const u = this.upstreamUsage;
    if (this.reported(status)) return u!;
    return { ...zeroUsage(), ...u, tokensInput: u?.tokensInput || tokensInputEstimate, tokensOutput: Math.max(u?.tokensOutput ?? 0, this.metered) };
  }
}

// ---- whole answers (non-streamed) ----

/**
 * Metered output of a finished answer (calibrated, no safety margin): what the model wrote (text, thinking,
 * tool calls), billed when it was delivered. From an Anthropic upstream the verbatim blocks are what is sent,
 * so they are what is metered (issue 12 attack report F1); the tool results it relays (web search) count
 * against the grant when cutting (cutAnthropicBlocks) but are not output the model generated.
 */
export function meterChatAnswer(res: ChatResponse): number {
  if (res.anthropicContent !== undefined) {
    let generated = 0;
    for (const b of res.anthropicContent) if (!isToolResultBlock(b)) generated += anthropicBlockTokens(b);
    return generated;
  }
  let n = 0;
  for (const part of res.content) {
    if (part.type === 'text') n += meterTextTokens(part.text);
    else if (part.type === 'tool_call') n += meterTextTokens(part.argumentsJson) + meterTextTokens(part.name) + 3;
  }
  if (res.reasoning) n += meterTextTokens(res.reasoning);
  return n;
}

/** The answer cut at `budget` output tokens: reasoning first, then text and whole tool calls in order. */
export function cutChatAtGrant(res: ChatResponse, budget: number): ChatResponse {
  let left = budget;
  let reasoning = res.reasoning;
  if (reasoning) {
    reasoning = cutTextAtTokens(reasoning, left);
    left = Math.max(0, left - meterTextTokens(reasoning));
  }
  const content: ChatResponse['content'] = [];
  for (const part of res.content) {
    if (left <= 0) break;
    if (part.type === 'text') {
      const text = cutTextAtTokens(part.text, left);
      if (text.length > 0) content.push(text.length === part.text.length ? part : { ...part, text });
      left -= meterTextTokens(text);
      if (text.length < part.text.length) break;
    } else if (part.type === 'tool_call') {
      const cost = meterTextTokens(part.argumentsJson) + meterTextTokens(part.name) + 3;
      if (cost > left) break; // half a tool call is no use to anyone
      content.push(part);
      left -= cost;
    } else {
      content.push(part);
    }
  }
  const out: ChatResponse = { ...res, content, finishReason: 'length' };
  if (reasoning !== undefined) out.reasoning = reasoning;
  // What an Anthropic client is sent (encodeMessagesResponse prefers the verbatim blocks): cut the same way.
  if (res.anthropicContent !== undefined) out.anthropicContent = cutAnthropicBlocks(res.anthropicContent, budget);
  return out;
}

const isToolResultBlock = (b: Record<string, unknown>): boolean => typeof b['type'] === 'string' && b['type'].endsWith('_tool_result');

/** Metered tokens of one verbatim Anthropic content block (whole answers and the stream meter alike). */
export function anthropicBlockTokens(b: Record<string, unknown>): number {
  switch (b['type']) {
    case 'text':
      return typeof b['text'] === 'string' ? meterTextTokens(b['text']) : 0;
    case 'thinking':
      return typeof b['thinking'] === 'string' ? meterTextTokens(b['thinking']) : 0;
    // Encrypted thinking: about 6 base64 characters per token of the thinking it hides.
    case 'redacted_thinking':
      return typeof b['data'] === 'string' ? Math.max(1, Math.ceil(b['data'].length / 6)) : 1;
    case 'tool_use':
    case 'server_tool_use':
      return meterTextTokens(JSON.stringify(b['input'] ?? {})) + meterTextTokens(String(b['name'] ?? '')) + 3;
    default:
      return meterTextTokens(JSON.stringify(b));
  }
}

/**
 * Verbatim Anthropic blocks cut at `budget`: text and thinking are cut to what fits (a cut thinking block
 * loses its signature, which no longer matches), whole blocks (tool use, server tool use and results,
 * redacted thinking) go whole or not at all, and nothing after the first block that did not fit is sent.
 */
function cutAnthropicBlocks(blocks: Record<string, unknown>[], budget: number): Record<string, unknown>[] {
  let left = budget;
  const out: Record<string, unknown>[] = [];
  for (const b of blocks) {
    if (left <= 0) break;
    const key = b['type'] === 'text' ? 'text' : b['type'] === 'thinking' ? 'thinking' : undefined;
    const whole = anthropicBlockTokens(b);
    if (whole <= left) {
      out.push(b);
      left -= whole;
      continue;
    }
    if (key !== undefined && typeof b[key] === 'string') {
      const text = cutTextAtTokens(b[key] as string, left);
      if (text.length > 0) out.push(key === 'thinking' ? { ...b, thinking: text, signature: '' } : { ...b, text });
    }
    break;
  }
  return out;
}

/** Metered output of a legacy completion (all choices). */
export function meterCompletionAnswer(res: CompletionResponse): number {
  let n = 0;
  for (const c of res.choices) n += meterTextTokens(c.text);
  return n;
}

/** The completion cut at `budget` output tokens, choice by choice. */
export function cutCompletionAtGrant(res: CompletionResponse, budget: number): CompletionResponse {
  let left = budget;
  return {
    ...res,
    choices: res.choices.map((c) => {
      const text = cutTextAtTokens(c.text, left);
      left = Math.max(0, left - meterTextTokens(text));
      return { text, finishReason: text.length < c.text.length ? 'length' : c.finishReason };
    }),
  };
}
