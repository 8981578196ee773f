/**
 * The compression plan applied to a canonical chat request and to an Anthropic client's native body (what an
 * Anthropic upstream receives instead of the canonical form), both through the same `Turn` view.
 */
import { estimateTextTokens, type ChatMessage, type ChatRequest, type ContentPart } from '../wire/index.ts';
import { DEFAULT_COMPRESS_OPTIONS, planCompression, type CompressionPlan, type CompressOptions, type Turn, type TurnPart } from './plan.ts';

function partOf(p: ContentPart): TurnPart {
  switch (p.type) {
    case 'text':
      return { kind: 'text', text: p.text };
    case 'tool_result':
      return { kind: 'tool_result', text: p.content };
    case 'tool_call':
      return { kind: 'other', text: `${p.name} ${p.argumentsJson}` };
    default:
      return { kind: 'other', text: '' };
  }
}

export function turnsOf(messages: readonly ChatMessage[]): Turn[] {
  return messages.map((m) => ({ role: m.role, parts: m.content.map(partOf) }));
}

export interface CompressedChat {
  req: ChatRequest;
  plan: CompressionPlan;
  /** Estimated input tokens removed (original parts' estimate minus their replacements'), >= 0. */
  removedTokens: number;
}

/** Compresses a canonical chat request (and its Anthropic native body, when it has one). Unchanged: `req` itself. */
export function compressChat(req: ChatRequest, opts: Readonly<CompressOptions> = DEFAULT_COMPRESS_OPTIONS): CompressedChat {
  const plan = planCompression(turnsOf(req.messages), opts);
  if (plan.edits.length === 0) return { req, plan, removedTokens: 0 };
  const messages = req.messages.slice();
  let removedTokens = 0;
  for (const e of plan.edits) {
    const m = messages[e.message]!;
    const content = m.content === req.messages[e.message]!.content ? m.content.slice() : m.content;
    const old = content[e.part]!;
    if (old.type === 'text') {
      removedTokens += estimateTextTokens(old.text) - estimateTextTokens(e.text);
      content[e.part] = { ...old, text: e.text };
    } else if (old.type === 'tool_result') {
      removedTokens += estimateTextTokens(old.content) - estimateTextTokens(e.text);
      content[e.part] = { ...old, content: e.text };
    }
    messages[e.message] = { ...m, content };
  }
  const out: ChatRequest = { ...req, messages };
  if (req.anthropicNative !== undefined) out.anthropicNative = { ...req.anthropicNative, body: compressAnthropicBody(req.anthropicNative.body, opts) };
  return { req: out, plan, removedTokens: Math.max(0, removedTokens) };
}

type Block = Record<string, unknown>;

/** A native tool_result's text when it is one string or one text block (other shapes are left alone). */
function toolResultText(b: Block): string | undefined {
  const c = b['content'];
  if (typeof c === 'string') return c;
  if (Array.isArray(c) && c.length === 1) {
    const only = c[0] as Block;
    if (only !== null && typeof only === 'object' && only['type'] === 'text' && typeof only['text'] === 'string') return only['text'];
  }
  return undefined;
}

/** The native body as turns: the top-level `system` first (read for repeated blocks, never edited), then the messages. */
function nativeTurns(body: Record<string, unknown>, messages: unknown[]): Turn[] {
  const turns: Turn[] = [];
  const system = body['system'];
  const systemText =
    typeof system === 'string'
      ? system
      : Array.isArray(system)
        ? system
            .map((b) => (b !== null && typeof b === 'object' && typeof (b as Block)['text'] === 'string' ? ((b as Block)['text'] as string) : ''))
            .join('\n\n')
        : '';
  if (systemText !== '') turns.push({ role: 'system', parts: [{ kind: 'text', text: systemText }] });
  for (const raw of messages) {
    const m = (raw ?? {}) as Block;
    const role = m['role'] === 'assistant' ? 'assistant' : m['role'] === 'system' ? 'system' : 'user';
    const c = m['content'];
    if (typeof c === 'string') {
      turns.push({ role, parts: [{ kind: 'text', text: c }] });
      continue;
    }
    const parts: TurnPart[] = (Array.isArray(c) ? c : []).map((rawBlock) => {
      const b = (rawBlock ?? {}) as Block;
      // A block with cache_control marks a vendor cache breakpoint: left exactly as sent.
      if (b['cache_control'] !== undefined) return { kind: 'other', text: '' };
      if (b['type'] === 'text' && typeof b['text'] === 'string') return { kind: 'text', text: b['text'] };
      if (b['type'] === 'tool_result') {
        const t = toolResultText(b);
        if (t !== undefined) return { kind: 'tool_result', text: t };
      }
      if (b['type'] === 'tool_use') return { kind: 'other', text: `${String(b['name'])} ${JSON.stringify(b['input'] ?? {})}` };
      return { kind: 'other', text: '' };
    });
    turns.push({ role, parts });
  }
  return turns;
}

/** The same rules over an Anthropic Messages body (`system` is top level there, never touched). */
export function compressAnthropicBody(body: Record<string, unknown>, opts: Readonly<CompressOptions> = DEFAULT_COMPRESS_OPTIONS): Record<string, unknown> {
  const raw = body['messages'];
  if (!Array.isArray(raw)) return body;
  const turns = nativeTurns(body, raw);
  const offset = turns.length - raw.length;
  const plan = planCompression(turns, opts);
  if (plan.edits.length === 0) return body;
  const messages = raw.slice();
  for (const edit of plan.edits) {
    const e = { ...edit, message: edit.message - offset };
    const m = { ...(messages[e.message] as Block) };
    const c = m['content'];
    if (typeof c === 'string') m['content'] = e.text;
    else if (Array.isArray(c)) {
      const blocks = c.slice();
      const b = { ...(blocks[e.part] as Block) };
      if (b['type'] === 'text') b['text'] = e.text;
      else b['content'] = typeof b['content'] === 'string' ? e.text : [{ ...((b['content'] as Block[])[0] as Block), text: e.text }];
      blocks[e.part] = b;
      m['content'] = blocks;
    }
    messages[e.message] = m;
  }
  return { ...body, messages };
}
