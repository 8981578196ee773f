import {
  cutTextAtTokens, meterTextTokens, TextMeter, zeroUsage,
  type ChatResponse, type CompletionResponse, type StreamEvent, type Usage,
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
export interface Extension { tokensOutputGranted: number; final: boolean }

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
  /** Tokens of the event under decision (not yet delivered). */
  #pending = 0;

  constructor(granted: number, max: number, extendAtFraction: number) {
    this.granted = granted;
    this.#max = max;
    this.#fraction = extendAtFraction;
    this.final = granted >= max;
    this.#extendAt = Math.floor(granted * extendAtFraction);
  }

  onEvent(ev: StreamEvent): MeterStep {
    if (ev.type === 'text' || ev.type === 'reasoning') this.#textTokens = this.#text.add(ev.text);
    else if (ev.type === 'tool_call_delta') this.#argsTokens = (this.#args ??= new TextMeter()).add(ev.argumentsDelta);
    else if (ev.type === 'tool_call_start') this.#toolStarts++;
    this.#pending = this.#textTokens + this.#argsTokens + 3 * this.#toolStarts - this.metered;
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
    this.#pending = 0;
    if (ev.type === 'finish') this.finished = true;
    else if (ev.type === 'usage') this.upstreamUsage = ev.usage;
  }

  /** The stream was ended here by a finish the gateway wrote (cut at the grant, or a missing finish). */
  closedByGateway(): void {
    this.#pending = 0;
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

/** Metered output of a finished answer (calibrated, no safety margin): what is billed when it was delivered. */
export function meterChatAnswer(res: ChatResponse): number {
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
  return { ...res, choices: res.choices.map((c) => {
    const text = cutTextAtTokens(c.text, left);
    left = Math.max(0, left - meterTextTokens(text));
    return { text, finishReason: text.length < c.text.length ? 'length' : c.finishReason };
  }) };
}
