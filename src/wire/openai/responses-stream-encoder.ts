import type { ErrorCode } from '../../core/index.ts';
import type { FinishReason, StreamEvent, Usage } from '../types.ts';
import {
  customInput,
  incompleteReason,
  itemId,
  messageItem,
  outputTextPart,
  reasoningItem,
  responseObject,
  toolCallItem,
  type Json,
  type ResponseEnvelope,
} from './encode-responses.ts';

type ItemStatus = 'completed' | 'incomplete';

interface OpenItem {
  kind: 'message' | 'reasoning' | 'tool';
  outputIndex: number;
  id: string;
  /** Text so far (message, reasoning) or the arguments JSON so far (tool). */
  text: string;
  call?: { n: number; id: string; name: string; custom: boolean };
  closed: boolean;
  /** The finished item (set when closed). */
  item?: Json;
}

/**
 * Canonical stream events → the Responses API's server-sent events, each `event: <type>` + `data: {...}` with a
 * `sequence_number`: response.created and response.in_progress first; per output item output_item.added, its
 * content_part.added, the deltas (output_text / reasoning_text / function_call_arguments), then the .done events;
 * and a terminal response.completed / response.incomplete (finish "length": cut by max_output_tokens or at the
 * grant) with usage, or response.failed when the upstream fails after the first byte. Custom tools (sent
 * upstream as function tools) come out as custom_tool_call items, their input sent whole when the call ends.
 */
export class ResponsesStreamEncoder {
  readonly #env: ResponseEnvelope;
  readonly #nowS: () => number;
  #seq = 0;
  #started = false;
  #done = false;
  #items: OpenItem[] = [];
  #message: OpenItem | undefined;
  #reasoning: OpenItem | undefined;
  #tools = new Map<number, OpenItem>();
  #toolCount = 0;
  #finish: FinishReason | undefined;
  #usage: Usage | undefined;
  #final: Json | undefined;

  constructor(env: ResponseEnvelope, nowS: () => number) {
    this.#env = env;
    this.#nowS = nowS;
  }

  /** The last Response object sent (completed, incomplete or failed), for storage; undefined before the end. */
  get finalResponse(): Json | undefined {
    return this.#final;
  }

  encode(ev: StreamEvent): string {
    if (this.#done) return '';
    let out = this.#start();
    switch (ev.type) {
      case 'start':
        return out;
      case 'usage':
        this.#usage = ev.usage;
        return out;
      case 'finish':
        this.#finish ??= ev.finishReason;
        return out;
      case 'text': {
        if (ev.text === '' || this.#finish !== undefined) return out;
        let m = this.#message;
        if (m === undefined || m.closed) {
          out += this.#closeText('completed');
          m = this.#message = this.#open('message', itemId(this.#env, 'msg', this.#messageIndex()));
          out += this.#frame('response.output_item.added', { output_index: m.outputIndex, item: messageItem(m.id, null, 'in_progress') });
          out += this.#frame('response.content_part.added', { item_id: m.id, output_index: m.outputIndex, content_index: 0, part: outputTextPart('') });
        }
        m.text += ev.text;
        return out + this.#frame('response.output_text.delta', { item_id: m.id, output_index: m.outputIndex, content_index: 0, delta: ev.text, logprobs: [] });
      }
      case 'reasoning': {
        if (ev.text === '' || this.#finish !== undefined) return out;
        let r = this.#reasoning;
        if (r === undefined || r.closed) {
          out += this.#closeText('completed');
          r = this.#reasoning = this.#open('reasoning', itemId(this.#env, 'rs', this.#items.length === 0 ? undefined : this.#items.length));
          out += this.#frame('response.output_item.added', { output_index: r.outputIndex, item: reasoningItem(r.id, '', 'in_progress') });
          out += this.#frame('response.content_part.added', {
            item_id: r.id,
            output_index: r.outputIndex,
            content_index: 0,
            part: { type: 'reasoning_text', text: '' },
          });
        }
        r.text += ev.text;
        return out + this.#frame('response.reasoning_text.delta', { item_id: r.id, output_index: r.outputIndex, content_index: 0, delta: ev.text });
      }
      case 'tool_call_start': {
        if (this.#finish !== undefined || this.#tools.has(ev.index)) return out;
        out += this.#closeText('completed');
        const n = this.#toolCount++;
        const call = { n, id: ev.id, name: ev.name, custom: this.#env.req.customTools.has(ev.name) };
        const t = this.#open('tool', '');
        t.call = call;
        const added = toolCallItem(this.#env, n, { id: ev.id, name: ev.name, argumentsJson: '' }, 'in_progress');
        t.id = added['id'] as string;
        this.#tools.set(ev.index, t);
        return out + this.#frame('response.output_item.added', { output_index: t.outputIndex, item: added });
      }
      case 'tool_call_delta': {
        const t = this.#tools.get(ev.index);
        if (t === undefined || t.closed || ev.argumentsDelta === '' || this.#finish !== undefined) return out;
        t.text += ev.argumentsDelta;
        // A custom tool's input is the string inside {"input": ...}: sent whole when the call ends.
        if (t.call!.custom) return out;
        return out + this.#frame('response.function_call_arguments.delta', { item_id: t.id, output_index: t.outputIndex, delta: ev.argumentsDelta });
      }
    }
  }

  /** Close every open item, then response.completed or response.incomplete with the usage. Idempotent. */
  finish(): string {
    if (this.#done) return '';
    let out = this.#start();
    const reason = incompleteReason(this.#finish ?? 'stop');
    const status: ItemStatus = reason === undefined ? 'completed' : 'incomplete';
    out += this.#closeAll(status);
    this.#done = true;
    const output = this.#items.map((it) => it.item!);
    if (reason === undefined) {
      this.#final = responseObject(this.#env, 'completed', output, this.#usage ?? null, { completedAtS: this.#nowS() });
      return out + this.#frame('response.completed', { response: this.#final });
    }
    this.#final = responseObject(this.#env, 'incomplete', output, this.#usage ?? null, { incompleteReason: reason });
    return out + this.#frame('response.incomplete', { response: this.#final });
  }

  /** The upstream failed after the first byte: close what is open (incomplete) and send response.failed. */
  fail(code: ErrorCode, message: string): string {
    if (this.#done) return '';
    let out = this.#start();
    out += this.#closeAll('incomplete');
    this.#done = true;
    const output = this.#items.map((it) => it.item!);
    this.#final = responseObject(this.#env, 'failed', output, this.#usage ?? null, { error: { code: 'server_error', message: `${message} (${code})` } });
    return out + this.#frame('response.failed', { response: this.#final });
  }

  #start(): string {
    if (this.#started) return '';
    this.#started = true;
    const r = responseObject(this.#env, 'in_progress', [], null);
    return this.#frame('response.created', { response: r }) + this.#frame('response.in_progress', { response: r });
  }

  #messageIndex(): number | undefined {
    const n = this.#items.filter((i) => i.kind === 'message').length;
    return n === 0 ? undefined : n;
  }

  #open(kind: OpenItem['kind'], id: string): OpenItem {
    const it: OpenItem = { kind, outputIndex: this.#items.length, id, text: '', closed: false };
    this.#items.push(it);
    return it;
  }

  #closeText(status: ItemStatus): string {
    let out = '';
    if (this.#reasoning !== undefined && !this.#reasoning.closed) out += this.#close(this.#reasoning, status);
    if (this.#message !== undefined && !this.#message.closed) out += this.#close(this.#message, status);
    return out;
  }

  #closeAll(status: ItemStatus): string {
    let out = '';
    for (const it of this.#items) if (!it.closed) out += this.#close(it, status);
    return out;
  }

  #itemJson(it: OpenItem, status: ItemStatus): Json {
    if (it.kind === 'message') return messageItem(it.id, it.text, status);
    if (it.kind === 'reasoning') return reasoningItem(it.id, it.text, status);
    const c = it.call!;
    return toolCallItem(this.#env, c.n, { id: c.id, name: c.name, argumentsJson: it.text === '' ? '{}' : it.text }, status);
  }

  #close(it: OpenItem, status: ItemStatus): string {
    it.closed = true;
    const item = (it.item = this.#itemJson(it, status));
    const base = { item_id: it.id, output_index: it.outputIndex };
    let out = '';
    if (it.kind === 'message') {
      out += this.#frame('response.output_text.done', { ...base, content_index: 0, text: it.text, logprobs: [] });
      out += this.#frame('response.content_part.done', { ...base, content_index: 0, part: outputTextPart(it.text) });
    } else if (it.kind === 'reasoning') {
      out += this.#frame('response.reasoning_text.done', { ...base, content_index: 0, text: it.text });
      out += this.#frame('response.content_part.done', { ...base, content_index: 0, part: { type: 'reasoning_text', text: it.text } });
    } else if (it.call!.custom) {
      const input = customInput(it.text);
      if (input !== '') out += this.#frame('response.custom_tool_call_input.delta', { ...base, delta: input });
      out += this.#frame('response.custom_tool_call_input.done', { ...base, input });
    } else {
      out += this.#frame('response.function_call_arguments.done', { ...base, name: it.call!.name, arguments: item['arguments'] });
    }
    return out + this.#frame('response.output_item.done', { output_index: it.outputIndex, item });
  }

  #frame(type: string, body: Json): string {
    return `event: ${type}\ndata: ${JSON.stringify({ type, sequence_number: this.#seq++, ...body })}\n\n`;
  }
}
