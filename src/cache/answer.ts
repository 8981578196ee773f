import type { ChatResponse, ContentPart, FinishReason, StreamEvent, Usage } from '../wire/index.ts';

/**
 * A cached answer is one canonical ChatResponse, whichever way it was delivered: a stream's events are folded
 * into it, and it is replayed as events for a streamed request (then each dialect's encoder writes it).
 */

/** Text is replayed in pieces of at most this many characters, so the stream meter extends the hold as it goes. */
const TEXT_PIECE = 256;

/**
 * Folds a stream's delivered events into one answer; undefined when it cannot be replayed faithfully (Anthropic
 * thinking signatures or verbatim blocks, no finish). `usage` is the usage the request settled with.
 */
export function answerOfEvents(events: readonly StreamEvent[], usage: Usage): ChatResponse | undefined {
  let id = '';
  let model = '';
  let createdS = 0;
  let reasoning = '';
  let finish: FinishReason | undefined;
  const content: ContentPart[] = [];
  const tools = new Map<number, { type: 'tool_call'; id: string; name: string; argumentsJson: string }>();
  for (const ev of events) {
    switch (ev.type) {
      case 'start':
        id = ev.id;
        model = ev.model;
        createdS = ev.createdS;
        break;
      case 'text': {
        const last = content[content.length - 1];
        if (last !== undefined && last.type === 'text') content[content.length - 1] = { type: 'text', text: last.text + ev.text };
        else content.push({ type: 'text', text: ev.text });
        break;
      }
      case 'reasoning':
        if (ev.signature !== undefined || ev.block !== undefined) return undefined;
        reasoning += ev.text;
        break;
      case 'tool_call_start': {
        const part = { type: 'tool_call' as const, id: ev.id, name: ev.name, argumentsJson: '' };
        tools.set(ev.index, part);
        content.push(part);
        break;
      }
      case 'tool_call_delta': {
        const part = tools.get(ev.index);
        if (part === undefined) return undefined;
        part.argumentsJson += ev.argumentsDelta;
        break;
      }
      case 'finish':
        finish = ev.finishReason;
        break;
      case 'usage':
        break;
    }
  }
  if (finish === undefined) return undefined;
  const res: ChatResponse = { id, model, createdS, content, finishReason: finish, usage: { ...usage } };
  if (reasoning !== '') res.reasoning = reasoning;
  return res;
}

/**
 * Keeps a stream's event for folding later (answerOfEvents), merged into the previous one when both are text,
 * plain reasoning, or argument deltas of one tool call: a long stream kept for the cache then holds about its
 * text, not one object per upstream chunk (thousands of concurrent cacheable streams must not exhaust memory).
 * The delivered event is never mutated (copies are kept). Returns the characters added.
 */
export function keepEvent(events: StreamEvent[], ev: StreamEvent): number {
  const last = events[events.length - 1];
  switch (ev.type) {
    case 'text':
      if (last?.type === 'text') events[events.length - 1] = { type: 'text', text: last.text + ev.text };
      else events.push({ type: 'text', text: ev.text });
      return ev.text.length;
    case 'reasoning':
      if (ev.signature === undefined && ev.block === undefined) {
        if (last?.type === 'reasoning' && last.signature === undefined && last.block === undefined)
          events[events.length - 1] = { type: 'reasoning', text: last.text + ev.text };
        else events.push({ type: 'reasoning', text: ev.text });
        return ev.text.length;
      }
      events.push(ev);
      return ev.text.length;
    case 'tool_call_delta':
      if (last?.type === 'tool_call_delta' && last.index === ev.index)
        events[events.length - 1] = { type: 'tool_call_delta', index: ev.index, argumentsDelta: last.argumentsDelta + ev.argumentsDelta };
      else events.push({ ...ev });
      return ev.argumentsDelta.length;
    default:
      events.push(ev);
      return 0;
  }
}

/** The events that replay an answer: start, reasoning, text in pieces, tool calls, finish, usage. */
export function eventsOfAnswer(res: ChatResponse): StreamEvent[] {
  const out: StreamEvent[] = [{ type: 'start', id: res.id, model: res.model, createdS: res.createdS }];
  if (res.reasoning !== undefined && res.reasoning !== '') out.push({ type: 'reasoning', text: res.reasoning });
  let index = 0;
  for (const p of res.content) {
    if (p.type === 'text') {
      for (let i = 0; i < p.text.length; i += TEXT_PIECE) out.push({ type: 'text', text: p.text.slice(i, i + TEXT_PIECE) });
    } else if (p.type === 'tool_call') {
      out.push({ type: 'tool_call_start', index, id: p.id, name: p.name });
      out.push({ type: 'tool_call_delta', index, argumentsDelta: p.argumentsJson });
      index++;
    }
  }
  out.push({ type: 'finish', finishReason: res.finishReason });
  out.push({ type: 'usage', usage: { ...res.usage } });
  return out;
}
