/**
 * Canonical ChatRequest -> Anthropic Messages request body (https://docs.anthropic.com/en/api/messages).
 *
 * Anthropic is stricter than the canonical model, so the mapping is lossy on purpose:
 * - every system message (anywhere in the conversation) is hoisted into the top-level `system`;
 * - role 'tool' messages become user turns of tool_result blocks, and consecutive same-role turns are
 *   merged (Anthropic wants alternating turns, and tool_result blocks first in their user turn);
 * - empty text parts and turns left empty are dropped (Anthropic rejects empty text blocks);
 * - max_tokens is required: maxTokensOutput ?? MAX_TOKENS_DEFAULT;
 * - temperature is clamped to Anthropic's [0, 1] (OpenAI clients may send up to 2);
 * - response_format json_object / json_schema has no Anthropic equivalent: best effort, an instruction
 *   is appended to the system prompt (the answer is not validated against the schema);
 * - seed is not supported upstream and is dropped; of `extra`, only Anthropic's own top-level fields
 *   (thinking, service_tier, ...) are forwarded, since extra from an OpenAI client would be rejected.
 */
import type { ChatMessage, ChatRequest, ContentPart, ResponseFormat, ToolChoice } from '../../wire/index.ts';

export const MAX_TOKENS_DEFAULT = 4096;

/** Anthropic request fields the canonical request does not model but a same-family client may send. */
const EXTRA_FIELDS_FORWARDED = ['thinking', 'service_tier', 'container', 'mcp_servers', 'context_management'] as const;

type ImageSource = { type: 'base64'; media_type: string; data: string } | { type: 'url'; url: string };
type Block =
  | { type: 'text'; text: string }
  | { type: 'image'; source: ImageSource }
  | { type: 'tool_use'; id: string; name: string; input: Record<string, unknown> }
  | { type: 'tool_result'; tool_use_id: string; content?: string; is_error?: boolean };
interface Turn {
  role: 'user' | 'assistant';
  content: Block[];
}

/** The beta under which Anthropic accepts `role: "system"` messages inside `messages`. */
export const MID_CONVERSATION_SYSTEM_BETA = 'mid-conversation-system';

export function buildMessagesBody(req: ChatRequest, upstreamModel: string, isStream: boolean): Record<string, unknown> {
  if (req.anthropicNative !== undefined) return nativeBody(req, req.anthropicNative, upstreamModel, isStream);
  const { system, turns } = buildConversation(req.messages);
  const instruction = responseFormatInstruction(req.responseFormat);
  if (instruction !== undefined) system.push(instruction);
  const body: Record<string, unknown> = {
    model: upstreamModel,
    max_tokens: req.maxTokensOutput ?? MAX_TOKENS_DEFAULT,
    messages: turns,
  };
  if (system.length > 0) body['system'] = system.join('\n\n');
  if (req.temperature !== undefined) body['temperature'] = Math.min(1, Math.max(0, req.temperature));
  if (req.topP !== undefined) body['top_p'] = req.topP;
  if (req.topK !== undefined) body['top_k'] = req.topK;
  if (req.stop !== undefined && req.stop.length > 0) body['stop_sequences'] = req.stop;
  if (req.tools !== undefined && req.tools.length > 0) {
    body['tools'] = req.tools.map((t) => ({
      name: t.name,
      ...(t.description !== undefined ? { description: t.description } : {}),
      input_schema: t.parameters,
    }));
    const choice = toolChoice(req.toolChoice, req.parallelToolCalls);
    if (choice !== undefined) body['tool_choice'] = choice;
  }
  if (req.user !== undefined) body['metadata'] = { user_id: req.user };
  for (const key of EXTRA_FIELDS_FORWARDED) {
    if (req.extra[key] !== undefined) body[key] = req.extra[key];
  }
  if (isStream) body['stream'] = true;
  return body;
}

/**
 * An Anthropic client's own body, forwarded as sent (cache_control, thinking blocks and their signatures,
 * documents, server tools, output_config, context_management, metadata, ...) with only what the gateway
 * decides replaced: the upstream model, max_tokens (the granted output) and stream. System messages inside
 * `messages` stay where they are when the client's anthropic-beta asks for that; otherwise they are folded
 * into the top-level system prompt, in order, after it.
 */
function nativeBody(req: ChatRequest, native: NonNullable<ChatRequest['anthropicNative']>, upstreamModel: string, isStream: boolean): Record<string, unknown> {
  const body: Record<string, unknown> = { ...native.body, model: upstreamModel };
  body['max_tokens'] = req.maxTokensOutput ?? native.body['max_tokens'] ?? MAX_TOKENS_DEFAULT;
  if (isStream) body['stream'] = true;
  else delete body['stream'];
  clampThinkingBudget(body);
  const beta = native.headers['anthropic-beta'] ?? '';
  const messages = native.body['messages'];
  if (Array.isArray(messages) && !beta.includes(MID_CONVERSATION_SYSTEM_BETA) && messages.some(isSystemMessage)) {
    const system = systemBlocks(native.body['system']);
    const rest: unknown[] = [];
    for (const m of messages) {
      if (isSystemMessage(m)) for (const b of systemBlocks((m as { content?: unknown }).content)) system.push(b);
      else rest.push(m);
    }
    body['system'] = system;
    body['messages'] = rest;
  }
  return body;
}

/** Minimum thinking budget Anthropic accepts. */
export const THINKING_BUDGET_MIN = 1024;

/**
 * Anthropic requires thinking.budget_tokens < max_tokens. max_tokens may have been lowered to what the balance
 * can pay: the budget follows it, and thinking is turned off when not even the minimum budget fits.
 */
function clampThinkingBudget(body: Record<string, unknown>): void {
  const thinking = body['thinking'];
  const max = body['max_tokens'];
  if (typeof thinking !== 'object' || thinking === null || typeof max !== 'number') return;
  const budget = (thinking as { budget_tokens?: unknown }).budget_tokens;
  if (typeof budget !== 'number' || budget < max) return;
  if (max - 1 < THINKING_BUDGET_MIN) delete body['thinking'];
  else body['thinking'] = { ...thinking, budget_tokens: max - 1 };
}

const isSystemMessage = (m: unknown): boolean => typeof m === 'object' && m !== null && (m as { role?: unknown }).role === 'system';

/** A system prompt (string or text blocks, cache_control kept) as a list of text blocks. */
function systemBlocks(raw: unknown): unknown[] {
  if (typeof raw === 'string') return raw === '' ? [] : [{ type: 'text', text: raw }];
  return Array.isArray(raw) ? [...raw] : [];
}

function buildConversation(messages: ChatMessage[]): { system: string[]; turns: Turn[] } {
  const system: string[] = [];
  const turns: Turn[] = [];
  for (const msg of messages) {
    if (msg.role === 'system') {
      const text = msg.content.map((p) => (p.type === 'text' ? p.text : '')).join('');
      if (text !== '') system.push(text);
      continue;
    }
    const role = msg.role === 'assistant' ? 'assistant' : 'user';
    const blocks = msg.content.flatMap(toBlocks);
    if (blocks.length === 0) continue;
    const last = turns.at(-1);
    if (last !== undefined && last.role === role) for (const b of blocks) last.content.push(b);
    else turns.push({ role, content: blocks });
  }
  for (const turn of turns) {
    // "tool_result blocks must come first in the content array" of a user turn; keep order otherwise.
    if (turn.role === 'user') turn.content = [...turn.content.filter(isToolResult), ...turn.content.filter((b) => !isToolResult(b))];
  }
  return { system, turns };
}

const isToolResult = (b: Block): boolean => b.type === 'tool_result';

function toBlocks(part: ContentPart): Block[] {
  switch (part.type) {
    case 'text':
      return part.text === '' ? [] : [{ type: 'text', text: part.text }];
    case 'image':
      return [{ type: 'image', source: imageSource(part.url, part.mediaType) }];
    case 'tool_call':
      return [{ type: 'tool_use', id: part.id, name: part.name, input: toolInput(part.argumentsJson) }];
    case 'tool_result': {
      const block: Block = { type: 'tool_result', tool_use_id: part.toolCallId };
      if (part.content !== '') block.content = part.content;
      if (part.isError === true) block.is_error = true;
      return [block];
    }
  }
}

/** data: URLs become base64 sources; anything else is passed as a URL source. */
export function imageSource(url: string, mediaType: string | undefined): ImageSource {
  if (!url.startsWith('data:')) return { type: 'url', url };
  const comma = url.indexOf(',');
  const meta = url.slice(5, comma < 0 ? url.length : comma);
  const payload = comma < 0 ? '' : url.slice(comma + 1);
  const params = meta.split(';');
  const media = params[0] !== undefined && params[0] !== '' ? params[0] : (mediaType ?? 'image/png');
  const data = params.includes('base64') ? payload : Buffer.from(decodeURIComponent(payload), 'utf8').toString('base64');
  return { type: 'base64', media_type: media, data };
}

/** Anthropic requires an object; arguments a model produced as broken JSON become {}. */
function toolInput(argumentsJson: string): Record<string, unknown> {
  try {
    const parsed: unknown = JSON.parse(argumentsJson);
    if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) return parsed as Record<string, unknown>;
  } catch {
    // fall through
  }
  return {};
}

function toolChoice(choice: ToolChoice | undefined, parallelToolCalls: boolean | undefined): Record<string, unknown> | undefined {
  const disableParallel = parallelToolCalls === false ? { disable_parallel_tool_use: true } : {};
  if (choice === undefined) return parallelToolCalls === false ? { type: 'auto', ...disableParallel } : undefined;
  if (choice === 'none') return { type: 'none' };
  if (choice === 'auto') return { type: 'auto', ...disableParallel };
  if (choice === 'required') return { type: 'any', ...disableParallel };
  return { type: 'tool', name: choice.name, ...disableParallel };
}

function responseFormatInstruction(format: ResponseFormat | undefined): string | undefined {
  if (format === undefined || format.type === 'text') return undefined;
  if (format.type === 'json_object') return 'Respond with a single valid JSON object and nothing else.';
  return `Respond with a single valid JSON object and nothing else. It must conform to this JSON Schema (${format.name}): ${JSON.stringify(format.schema)}`;
}
