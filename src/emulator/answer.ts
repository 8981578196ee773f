import { SeededRandom } from '../core/index.ts';
import { textPieces } from './agent.ts';
import type { Directives, Pacing } from './types.ts';

/**
 * The deterministic "model": output text is a function of (model, prompt text) only, one output
 * token per word (with a leading space, as BPE vocabularies have), input tokens a fixed function of
 * the UTF-8 size of the prompt. Tests and the benchmark can therefore predict every number.
 */

const FILLER = (
  'alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa ' +
  'quebec romeo sierra tango uniform victor whiskey xray yankee zulu token grid carrier prepaid ' +
  'bucket bundle meter stream answer signal packet quota ledger settle reserve charge route relay ' +
  'model vendor upstream gateway latency budget window cycle credit balance record offer plan ' +
  'river stone cloud light'
)
  .split(' ')
  .map((w) => ' ' + w);

/** Accumulates what the input-token count and the answer seed depend on, without concatenating. */
export class PromptMeter {
  hash = 0x811c9dc5;
  bytes = 0;
  messages = 0;
  extraBytes = 0;

  /** Prompt text: hashed (drives the answer) and counted (drives input tokens). */
  text(s: string): void {
    if (s.length === 0) return;
    let h = this.hash;
    for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
    this.hash = Math.imul(h ^ 0x0a, 0x01000193);
    this.bytes += Buffer.byteLength(s, 'utf8');
  }

  /**
   * A new message starts: the messages so far are a prefix a vendor's prompt cache could hold (its text hash and
   * tokens are kept as a checkpoint; see promptCacheHit).
   */
  message(): void {
    if (this.messages > 0) {
      const tokens = Math.ceil((this.bytes + this.extraBytes) / 4) + 4 * this.messages;
      (this.checkpoints ??= []).push({ hash: this.hash >>> 0, tokens });
    }
    this.messages++;
  }

  /** Leading runs of messages followed by another message, oldest first (undefined: a single message). */
  checkpoints: { hash: number; tokens: number }[] | undefined = undefined;

  /** Counted but not hashed: tool definitions, images (a fixed size), structured payloads. */
  extra(bytes: number): void {
    this.extraBytes += bytes;
  }

  /** One token per UTF-8 byte + 4 per message (the `inputBytes` directive). */
  inputTokensByBytes(): number {
    return this.bytes + this.extraBytes + 4 * this.messages;
  }

  /** ceil(utf8 bytes / 4) + 4 per message. */
  inputTokens(): number {
    return Math.ceil((this.bytes + this.extraBytes) / 4) + 4 * this.messages;
  }
}

/** Vendors cache prompt prefixes from this many tokens (OpenAI: 1,024). */
export const PROMPT_CACHE_MIN_TOKENS = 1024;
const PROMPT_CACHE_MAX = 65_536;

/**
 * The vendor prompt cache of one emulator (issue 17 item 5): a request whose leading messages (all but the last,
 * >= PROMPT_CACHE_MIN_TOKENS) were seen before by the same deployment (`identity`: dialect, model, API key) reads
 * them from the cache: the longest such prefix's tokens are reported as cached input (OpenAI
 * prompt_tokens_details.cached_tokens, Anthropic cache_read_input_tokens). Then every prefix of this request is
 * remembered. Bounded: cleared when full.
 */
export function promptCacheHit(cache: Map<string, number>, identity: string, meter: PromptMeter): number {
  const cps = meter.checkpoints;
  if (cps === undefined) return 0;
  let hit = 0;
  for (let i = cps.length - 1; i >= 0; i--) {
    const c = cps[i]!;
    if (c.tokens < PROMPT_CACHE_MIN_TOKENS) break;
    if (cache.has(`${identity}|${c.hash}|${c.tokens}`)) {
      hit = c.tokens;
      break;
    }
  }
  for (const c of cps) {
    if (c.tokens < PROMPT_CACHE_MIN_TOKENS) continue;
    if (cache.size >= PROMPT_CACHE_MAX) cache.clear();
    cache.set(`${identity}|${c.hash}|${c.tokens}`, c.tokens);
  }
  return hit;
}

export interface AnswerUsage {
  inputTokens: number;
  cachedTokens: number;
  /** All generated tokens, reasoning included (how OpenAI and Anthropic bill them). */
  outputTokens: number;
  reasoningTokens: number;
}

export interface ToolCall {
  name: string;
  argsJson: string;
  /** The arguments JSON split in 2+ pieces for streaming. */
  argPieces: string[];
}

export interface Answer {
  model: string;
  seed: number;
  usage: AnswerUsage;
  reasoning: string[];
  tokens: string[];
  finish: 'stop' | 'length' | 'tool';
  tool: ToolCall | undefined;
}

const prefixCache = new Map<string, string[]>();
const PREFIX_CACHE_MAX = 512;

function prefixFor(model: string): string[] {
  let p = prefixCache.get(model);
  if (p === undefined) {
    p = ['This', ' is', ' the', ' TokenGrid', ' emulator', ' answering', ' as', ` ${model}.`];
    if (prefixCache.size >= PREFIX_CACHE_MAX) prefixCache.clear();
    prefixCache.set(model, p);
  }
  return p;
}

function fillerTokens(seed: number, count: number, out: string[]): void {
  const rng = new SeededRandom(seed);
  for (let i = 0; i < count; i++) out.push(FILLER[Math.floor(rng.float() * FILLER.length)] as string);
}

/** The first `count` tokens of this (model, prompt) answer. */
export function answerTokens(model: string, seed: number, count: number): string[] {
  const prefix = prefixFor(model);
  if (count <= prefix.length) return prefix.slice(0, count);
  const out = prefix.slice();
  fillerTokens(seed, count - prefix.length, out);
  out[out.length - 1] += '.';
  return out;
}

function reasoningTokens(seed: number, count: number): string[] {
  if (count === 0) return [];
  const out = ['Thinking'];
  fillerTokens(seed ^ 0x5bd1e995, count - 1, out);
  return out;
}

export function seedOf(model: string, meter: PromptMeter): number {
  let h = meter.hash;
  for (let i = 0; i < model.length; i++) h = Math.imul(h ^ model.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

export interface AnswerRequest {
  model: string;
  meter: PromptMeter;
  /** The request's cap (max_tokens & co.), undefined when absent. */
  maxTokens: number | undefined;
  tool: { name: string; argsJson: string } | undefined;
  directives: Directives;
  pacing: Pacing;
  /** A fixed answer text (a tool result echoed, JSON for a schema) instead of the generated words; see agent.ts. */
  text?: string | undefined;
  /** Input tokens read from the emulated vendor prompt cache (promptCacheHit); the `cached` directive wins. */
  promptCached?: number;
}

/** Splits tool arguments in at least 2 pieces (when longer than 1 char) of at most 8 chars. */
export function splitArgs(json: string): string[] {
  const size = Math.max(1, Math.min(8, Math.ceil(json.length / 2)));
  const out: string[] = [];
  for (let i = 0; i < json.length; i += size) out.push(json.slice(i, i + size));
  return out.length > 0 ? out : [''];
}

export function buildAnswer(r: AnswerRequest): Answer {
  const d = r.directives;
  const seed = seedOf(r.model, r.meter);
  const inputTokens = d.promptTokens ?? (d.inputBytes === true ? r.meter.inputTokensByBytes() : r.meter.inputTokens());
  const cachedTokens = Math.min(d.cached ?? r.promptCached ?? 0, inputTokens);
  const budget = d.ignoreMaxTokens === true || r.maxTokens === undefined ? Number.MAX_SAFE_INTEGER : r.maxTokens;
  const reasoningWanted = d.reasoning ?? 0;
  const reasoningCount = Math.min(reasoningWanted, budget);
  const reasoning = reasoningTokens(seed, reasoningCount);
  const usage = { inputTokens, cachedTokens, outputTokens: 0, reasoningTokens: reasoningCount };
  if (r.tool !== undefined) {
    // A tool call's size in tokens: the arguments JSON at ~4 bytes per token, plus the name.
    const toolTokens = Math.min(Math.ceil(Buffer.byteLength(r.tool.argsJson) / 4) + 1, budget - reasoningCount);
    usage.outputTokens = reasoningCount + toolTokens;
    const tool = { ...r.tool, argPieces: splitArgs(r.tool.argsJson) };
    return { model: r.model, seed, usage, reasoning, tokens: [], finish: 'tool', tool };
  }
  if (r.text !== undefined) {
    const pieces = textPieces(r.text);
    const room = Math.max(0, budget - reasoningCount);
    const tokens = pieces.length > room ? pieces.slice(0, room) : pieces;
    usage.outputTokens = reasoningCount + tokens.length;
    return { model: r.model, seed, usage, reasoning, tokens, finish: pieces.length > room ? 'length' : 'stop', tool: undefined };
  }
  const wanted = d.tokens ?? r.pacing.outputTokens;
  const count = Math.min(wanted, budget - reasoningCount);
  usage.outputTokens = reasoningCount + count;
  const finish = reasoningWanted + wanted > budget ? 'length' : 'stop';
  return { model: r.model, seed, usage, reasoning, tokens: answerTokens(r.model, seed, count), finish, tool: undefined };
}

/** Groups tokens into chunk strings of `per` tokens each. */
export function groupTokens(tokens: string[], per: number): string[] {
  if (per <= 1) return tokens;
  const out: string[] = [];
  for (let i = 0; i < tokens.length; i += per) out.push(tokens.slice(i, i + per).join(''));
  return out;
}
