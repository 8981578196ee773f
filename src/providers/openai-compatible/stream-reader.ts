import type { FinishReason, StreamEvent, Usage } from '../../wire/index.ts';
import { UpstreamError } from '../types.ts';
import type { ResponseDefaults } from './parse-response.ts';
import {
  argumentsOf,
  isObj,
  mapFinishReason,
  mapUsage,
  openaiUsagePattern,
  RE_INT,
  RE_JSON_STR,
  RE_PLAIN_STR,
  reasoningOf,
  str,
  textOf,
  usageOfCounts,
  type Obj,
} from './upstream-fields.ts';

/** Turns one parsed upstream chunk into canonical events; one instance per stream. */
export interface ChunkParser {
  /** Append the events of one chunk to `out`. Throws UpstreamError for an in-stream error object. */
  chunk(json: unknown, out: StreamEvent[]): void;
  /** True once a finish_reason was seen (the stream may end without [DONE] after that). */
  readonly finished: boolean;
  /** The stream is complete: emit what is still pending (tool calls, finish, the usage held back). */
  end(out: StreamEvent[]): void;
  /**
   * Optional fast path: handle one frame's raw data without JSON.parse when it is a chunk of a plain text
   * answer in the exact shape OpenAI sends; true when handled, with exactly the events (and state) that
   * chunk(JSON.parse(data)) would have given. false: the caller parses the frame and calls chunk().
   */
  plainDelta?(data: string, out: StreamEvent[]): boolean;
}

/**
 * A `chat.completion.chunk` in OpenAI's own compact form and key order (id, object, created, model, optional
 * system_fingerprint, choices, optional usage) that carries one of:
 * - one choice (index 0) whose delta is empty or holds content only (after `"role":"assistant"` on the first
 *   chunk, and before `"refusal":null`), logprobs null, a finish_reason (null or a reason), `"usage":null` or none;
 * - no choice and OpenAI's usage object (the last chunk with stream_options.include_usage).
 * That is every chunk of a plain text answer. Groups: 1 id, 2 created, 3 model, 4 content (JSON string body),
 * 5 finish reason, 6-9 usage counts (prompt, completion, cached, reasoning). id and model are non-empty with
 * nothing escaped; strings hold no raw control characters (JSON forbids them; such a frame goes to JSON.parse
 * and fails there as before).
 */
const PLAIN_CHUNK = new RegExp(
  String.raw`^\{"id":"(${RE_PLAIN_STR})","object":"chat\.completion\.chunk","created":(${RE_INT}),"model":"(${RE_PLAIN_STR})",` +
    String.raw`(?:"system_fingerprint":(?:null|"[^"\\\x00-\x1f]*"),)?"choices":` +
    String.raw`(?:\[\{"index":0,"delta":\{(?:(?:"role":"assistant",)?"content":"(${RE_JSON_STR})"(?:,"refusal":null)?)?\},"logprobs":null,"finish_reason":(?:null|"([a-z_]+)")\}\](?:,"usage":null)?` +
    String.raw`|\[\],"usage":${openaiUsagePattern('')})\}$`,
);

/** The finishing choice of a fast-path chunk carries no usage of its own. */
const NO_CHOICE_USAGE: Obj = Object.freeze({});

interface ToolState {
  index: number;
  id: string | undefined;
  started: boolean;
  /** Argument text that arrived before the tool's name (we start a call only once it has a name). */
  pending: string;
}

/**
 * Shared part of chat and legacy completion chunks: the 'start' event from the first chunk, in-stream
 * `{error}` objects, and usage. Usage is held back and emitted once at the end, because vendors put
 * it in different places (a `choices: []` chunk, the finish chunk, or on every chunk) and consumers
 * want it once, after 'finish'.
 */
abstract class BaseChunkParser implements ChunkParser {
  protected started = false;
  finished = false;
  #usage: Usage | undefined;

  constructor(protected readonly defaults: ResponseDefaults) {}

  chunk(json: unknown, out: StreamEvent[]): void {
    if (!isObj(json)) throw new UpstreamError('malformed', 'upstream stream chunk is not a JSON object', undefined, String(json).slice(0, 2048));
    if (json['error'] !== undefined && json['error'] !== null) {
      const e = json['error'];
      const message = isObj(e) ? str(e['message']) : str(e);
      // OpenAI and vLLM report a failure mid-stream this way; the answer is cut short.
      throw new UpstreamError(
        'disconnect',
        `upstream reported an error mid-stream: ${message ?? 'no message'}`,
        undefined,
        JSON.stringify(json).slice(0, 2048),
      );
    }
    if (!this.started) {
      this.started = true;
      out.push({
        type: 'start',
        id: str(json['id']) || this.defaults.id,
        model: str(json['model']) || this.defaults.model,
        createdS: typeof json['created'] === 'number' ? json['created'] : this.defaults.createdS,
      });
    }
    if (json['usage'] !== undefined && json['usage'] !== null) this.#takeUsage(json['usage']);
    const choices = json['choices'];
    if (Array.isArray(choices) && choices.length > 0 && isObj(choices[0])) this.choice(choices[0], out);
  }

  protected abstract choice(choice: Obj, out: StreamEvent[]): void;

  protected finish(reason: FinishReason, choice: Obj, out: StreamEvent[]): void {
    this.finished = true;
    out.push({ type: 'finish', finishReason: reason });
    // Moonshot's older API puts usage inside the finishing choice.
    if (choice['usage'] !== undefined) this.#takeUsage(choice['usage']);
  }

  #takeUsage(u: unknown): void {
    const usage = mapUsage(u);
    if (usage !== undefined) this.#usage = usage;
  }

  /** The usage a chunk carried, already mapped (the fast path's). */
  protected keepUsage(usage: Usage): void {
    this.#usage = usage;
  }

  end(out: StreamEvent[]): void {
    if (!this.started) {
      this.started = true;
      out.push({ type: 'start', id: this.defaults.id, model: this.defaults.model, createdS: this.defaults.createdS });
    }
    if (!this.finished) this.finish('stop', {}, out);
    if (this.#usage !== undefined) out.push({ type: 'usage', usage: this.#usage });
    this.#usage = undefined;
  }
}

/** `chat.completion.chunk` → text, reasoning, tool-call and finish events. */
export class ChatChunkParser extends BaseChunkParser {
  /** Upstream tool index → state. Upstream indexes may start at 1 or skip; canonical ones are 0, 1, 2... */
  readonly #tools = new Map<number, ToolState>();
  #lastKey = 0;

  plainDelta(data: string, out: StreamEvent[]): boolean {
    const m = PLAIN_CHUNK.exec(data);
    if (m === null) return false;
    const reason = m[5];
    // A finish with tool calls pending flushes and may remap them: the general path does that.
    if (reason !== undefined && !this.finished && this.#tools.size > 0) return false;
    // In chunk()'s order: start, usage, then the choice (ignored once finished).
    if (!this.started) {
      this.started = true;
      out.push({ type: 'start', id: m[1]!, model: m[3]!, createdS: Number(m[2]) });
    }
    if (m[6] !== undefined) {
      this.keepUsage(usageOfCounts(Number(m[6]), Number(m[7]), m[8] === undefined ? undefined : Number(m[8]), m[9] === undefined ? undefined : Number(m[9])));
      return true;
    }
    if (this.finished) return true;
    const raw = m[4];
    if (raw !== undefined && raw !== '') {
      const text = raw.includes('\\') ? (JSON.parse(`"${raw}"`) as string) : raw;
      if (text !== '') out.push({ type: 'text', text });
    }
    if (reason !== undefined) this.finish(mapFinishReason(reason), NO_CHOICE_USAGE, out);
    return true;
  }

  protected choice(choice: Obj, out: StreamEvent[]): void {
    if (this.finished) return;
    const delta = choice['delta'];
    if (isObj(delta)) {
      const reasoning = reasoningOf(delta);
      if (reasoning !== undefined) out.push({ type: 'reasoning', text: reasoning });
      const content = delta['content'];
      if (content !== undefined && content !== null) {
        const text = textOf(content);
        if (text !== '') out.push({ type: 'text', text });
      }
      const calls = delta['tool_calls'];
      if (Array.isArray(calls)) for (const c of calls) if (isObj(c)) this.#toolDelta(c, out);
    }
    const reason = choice['finish_reason'];
    if (reason !== undefined && reason !== null) {
      this.#flushTools(out);
      let mapped = mapFinishReason(reason);
      // Ollama and older vLLM finish a tool-call answer with 'stop'; clients loop on 'tool_calls'.
      if (mapped === 'stop' && this.#tools.size > 0) mapped = 'tool_calls';
      this.finish(mapped, choice, out);
    }
  }

  #toolDelta(c: Obj, out: StreamEvent[]): void {
    const key = this.#keyOf(c);
    let state = this.#tools.get(key);
    if (state === undefined) {
      state = { index: this.#tools.size, id: undefined, started: false, pending: '' };
      this.#tools.set(key, state);
    }
    this.#lastKey = key;
    const id = str(c['id']);
    if (id !== undefined && id !== '' && state.id === undefined) state.id = id;
    const fn = isObj(c['function']) ? c['function'] : undefined;
    const name = str(fn?.['name']);
    const args = argumentsOf(fn?.['arguments']);
    // Vendors that repeat id and name on every delta (some Qwen and vLLM builds) start the call once.
    if (!state.started && name !== undefined && name !== '') this.#startTool(state, name, out);
    if (args === '') return;
    if (state.started) out.push({ type: 'tool_call_delta', index: state.index, argumentsDelta: args });
    else state.pending += args;
  }

  /** Vendors without `index` on tool deltas: a new id opens a new call, otherwise it continues the last one. */
  #keyOf(c: Obj): number {
    const index = c['index'];
    if (typeof index === 'number') return index;
    const id = str(c['id']);
    const last = this.#tools.get(this.#lastKey);
    if (last === undefined || (id !== undefined && id !== '' && last.id !== undefined && id !== last.id)) return -1 - this.#tools.size;
    return this.#lastKey;
  }

  #startTool(state: ToolState, name: string, out: StreamEvent[]): void {
    state.started = true;
    out.push({ type: 'tool_call_start', index: state.index, id: state.id ?? `${this.defaults.id}_call_${state.index}`, name });
    if (state.pending !== '') out.push({ type: 'tool_call_delta', index: state.index, argumentsDelta: state.pending });
    state.pending = '';
  }

  /** A call whose name never arrived is still reported (with an empty name) rather than lost. */
  #flushTools(out: StreamEvent[]): void {
    for (const state of this.#tools.values()) if (!state.started) this.#startTool(state, '', out);
  }

  override end(out: StreamEvent[]): void {
    if (!this.finished) this.#flushTools(out);
    if (!this.finished && this.#tools.size > 0) this.finish('tool_calls', {}, out);
    super.end(out);
  }
}

/** Legacy `text_completion` chunks → text and finish events (first choice only). */
export class CompletionChunkParser extends BaseChunkParser {
  protected choice(choice: Obj, out: StreamEvent[]): void {
    if (this.finished) return;
    const text = textOf(choice['text']);
    if (text !== '') out.push({ type: 'text', text });
    const reason = choice['finish_reason'];
    if (reason !== undefined && reason !== null) this.finish(mapFinishReason(reason), choice, out);
  }
}
