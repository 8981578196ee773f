/**
 * Anthropic content blocks -> canonical content parts, one message at a time.
 *
 * Decisions (also in index.ts):
 * - A user message carrying tool_result blocks becomes one canonical role 'tool' message per
 *   tool_result (in order), followed by a role 'user' message with the remaining blocks, if any.
 *   That is the shape every upstream dialect can encode (OpenAI needs one `tool` message per call,
 *   right after the assistant's tool calls); the Anthropic adapter merges them back into one user turn.
 * - Images inside a tool_result cannot live in the canonical tool_result (its content is a string),
 *   so they move to the user message that follows the tool messages instead of being lost.
 * - thinking / redacted_thinking blocks in assistant history are dropped from the canonical messages:
 *   the canonical model has no place for them. An Anthropic upstream gets them back, signatures and all,
 *   from the request's `anthropicNative` body (see build-request.ts in providers/anthropic).
 * - A `role: "system"` message (Claude Code's mid-conversation-system beta) becomes a canonical system
 *   message in place: other upstreams see a system message where the client put it.
 * - Block types the canonical model cannot carry (document, search_result, server tool blocks, ...) are
 *   accepted and listed in `requires`: only an Anthropic upstream can serve them, from the native body.
 */
import { ok } from '../../core/index.ts';
import type { ChatMessage, ContentPart } from '../types.ts';
import { fail, isRecord, optionalBoolean, pathOf, requireArray, requireRecord, requireString, type DecodeResult } from './validate.ts';

type AnthropicRole = 'user' | 'assistant';

/**
 * Decode one entry of `messages` into one or more canonical messages. `requires` collects what only an
 * Anthropic upstream can serve (as "<param>: <what>").
 */
export function decodeMessage(raw: unknown, param: string, requires: string[] = []): DecodeResult<ChatMessage[]> {
  const rec = requireRecord(raw, param);
  if (!rec.ok) return rec;
  const roleRaw = rec.value['role'];
  if (roleRaw === undefined) return fail(pathOf(param, 'role'), 'Field required');
  if (roleRaw === 'system') return decodeSystemMessage(rec.value['content'], pathOf(param, 'content'));
  if (roleRaw !== 'user' && roleRaw !== 'assistant') return fail(pathOf(param, 'role'), "Input should be 'user', 'assistant' or 'system'");
  const role: AnthropicRole = roleRaw;
  const contentParam = pathOf(param, 'content');
  const content = rec.value['content'];
  if (content === undefined) return fail(contentParam, 'Field required');
  if (typeof content === 'string') return ok([{ role, content: [{ type: 'text', text: content }] }]);
  if (!Array.isArray(content)) return fail(contentParam, 'Input should be a valid string or list of content blocks');

  const parts: ContentPart[] = [];
  const toolMessages: ChatMessage[] = [];
  for (let i = 0; i < content.length; i++) {
    const decoded = decodeBlock(content[i], role, pathOf(contentParam, i), requires);
    if (!decoded.ok) return decoded;
    for (const part of decoded.value) {
      if (part.type === 'tool_result') toolMessages.push({ role: 'tool', content: [part] });
      else parts.push(part);
    }
  }
  // A user turn that only answered tools has nothing left to say; keep the empty turn otherwise
  // (an assistant turn with an empty list is legal as a prefill).
  if (parts.length > 0 || toolMessages.length === 0) toolMessages.push({ role, content: parts });
  return ok(toolMessages);
}

/** A system message inside `messages`: a string or a list of text blocks (cache_control allowed). */
function decodeSystemMessage(content: unknown, param: string): DecodeResult<ChatMessage[]> {
  if (content === undefined) return fail(param, 'Field required');
  if (typeof content === 'string') return ok([{ role: 'system', content: content === '' ? [] : [{ type: 'text', text: content }] }]);
  if (!Array.isArray(content)) return fail(param, 'Input should be a valid string or list of text blocks');
  const parts: ContentPart[] = [];
  for (let i = 0; i < content.length; i++) {
    const blockParam = pathOf(param, i);
    const block = requireRecord(content[i], blockParam);
    if (!block.ok) return block;
    if (block.value['type'] !== 'text') return fail(pathOf(blockParam, 'type'), "Input should be 'text'");
    const text = requireString(block.value['text'], pathOf(blockParam, 'text'));
    if (!text.ok) return text;
    parts.push({ type: 'text', text: text.value });
  }
  return ok([{ role: 'system', content: parts }]);
}

/** One block -> zero or more parts (thinking -> none, tool_result with images -> result + images). */
function decodeBlock(raw: unknown, role: AnthropicRole, param: string, requires: string[]): DecodeResult<ContentPart[]> {
  const rec = requireRecord(raw, param);
  if (!rec.ok) return rec;
  const block = rec.value;
  const type = requireString(block['type'], pathOf(param, 'type'));
  if (!type.ok) return type;
  switch (type.value) {
    case 'text': {
      const text = requireString(block['text'], pathOf(param, 'text'));
      return text.ok ? ok([{ type: 'text', text: text.value }]) : text;
    }
    case 'image': {
      const image = decodeImage(block, param);
      return image.ok ? ok([image.value]) : image;
    }
    case 'tool_use':
      if (role !== 'assistant') return fail(pathOf(param, 'type'), 'tool_use blocks are only allowed in assistant messages');
      return decodeToolUse(block, param);
    case 'tool_result':
      if (role !== 'user') return fail(pathOf(param, 'type'), 'tool_result blocks are only allowed in user messages');
      return decodeToolResult(block, param);
    case 'thinking':
    case 'redacted_thinking':
      if (role !== 'assistant') return fail(pathOf(param, 'type'), `${type.value} blocks are only allowed in assistant messages`);
      return ok([]);
    default:
      // document, search_result, server_tool_use, web_search_tool_result, container_upload, ...: Anthropic
      // validates them itself; other upstreams cannot take them.
      if (type.value === '') return fail(pathOf(param, 'type'), 'String should have at least 1 character');
      requires.push(`${param}: a '${type.value}' block`);
      return ok([]);
  }
}

function decodeImage(block: Record<string, unknown>, param: string): DecodeResult<ContentPart> {
  const srcParam = pathOf(param, 'source');
  const source = requireRecord(block['source'], srcParam);
  if (!source.ok) return source;
  const kind = requireString(source.value['type'], pathOf(srcParam, 'type'));
  if (!kind.ok) return kind;
  if (kind.value === 'base64') {
    const mediaType = requireString(source.value['media_type'], pathOf(srcParam, 'media_type'));
    if (!mediaType.ok) return mediaType;
    const data = requireString(source.value['data'], pathOf(srcParam, 'data'));
    if (!data.ok) return data;
    return ok({ type: 'image', url: `data:${mediaType.value};base64,${data.value}`, mediaType: mediaType.value });
  }
  if (kind.value === 'url') {
    const url = requireString(source.value['url'], pathOf(srcParam, 'url'));
    return url.ok ? ok({ type: 'image', url: url.value }) : url;
  }
  return fail(pathOf(srcParam, 'type'), "Input should be 'base64' or 'url'");
}

function decodeToolUse(block: Record<string, unknown>, param: string): DecodeResult<ContentPart[]> {
  const id = requireString(block['id'], pathOf(param, 'id'));
  if (!id.ok) return id;
  const name = requireString(block['name'], pathOf(param, 'name'));
  if (!name.ok) return name;
  const input = requireRecord(block['input'], pathOf(param, 'input'));
  if (!input.ok) return input;
  return ok([{ type: 'tool_call', id: id.value, name: name.value, argumentsJson: JSON.stringify(input.value) }]);
}

function decodeToolResult(block: Record<string, unknown>, param: string): DecodeResult<ContentPart[]> {
  const id = requireString(block['tool_use_id'], pathOf(param, 'tool_use_id'));
  if (!id.ok) return id;
  const isError = optionalBoolean(block['is_error'], pathOf(param, 'is_error'));
  if (!isError.ok) return isError;
  const contentParam = pathOf(param, 'content');
  const raw = block['content'];
  const texts: string[] = [];
  const images: ContentPart[] = [];
  if (typeof raw === 'string') texts.push(raw);
  else if (raw !== undefined && raw !== null) {
    const list = requireArray(raw, contentParam);
    if (!list.ok) return fail(contentParam, 'Input should be a valid string or list of content blocks');
    for (let i = 0; i < list.value.length; i++) {
      const item = list.value[i];
      const itemParam = pathOf(contentParam, i);
      if (isRecord(item) && item['type'] === 'image') {
        const image = decodeImage(item, itemParam);
        if (!image.ok) return image;
        images.push(image.value);
        continue;
      }
      const rec = requireRecord(item, itemParam);
      if (!rec.ok) return rec;
      if (rec.value['type'] !== 'text') return fail(pathOf(itemParam, 'type'), "Input should be 'text' or 'image'");
      const text = requireString(rec.value['text'], pathOf(itemParam, 'text'));
      if (!text.ok) return text;
      texts.push(text.value);
    }
  }
  const result: ContentPart = { type: 'tool_result', toolCallId: id.value, content: texts.join('\n') };
  if (isError.value === true) result.isError = true;
  return ok([result, ...images]);
}
