/**
 * The guardrail stage (issue 17 item 7): what the security protection pack (feature `security_pack`) buys.
 * Runs only for requests whose context says the account has the pack (`ctx.guardrails`, set at
 * authentication from the key snapshot): other requests pay one property read per hook.
 *
 * - beforeAdmit (nothing held yet): the input is checked against the operator's block keywords and patterns
 *   and the moderation port (a refusal is `content_blocked`, nothing reserved, nothing sent upstream), then
 *   its personal data is redacted, so the upstream never receives it: in the canonical messages and, for an
 *   Anthropic client, in its native body (what an Anthropic upstream receives instead: build-request.ts).
 * - onAnswer / onEvent: the output's personal data is redacted (an Anthropic upstream's verbatim blocks too); streams through a StreamRedactor that holds
 *   back the last run of text that a match could still extend and emits it before the next non-text event.
 * - Every hit is counted (`tokengrid_guardrail_hits_total{kind}`) and logged with the request id.
 */
import { TokenGridError } from '../core/index.ts';
import type { FlightView, Stage } from '../gateway/index.ts';
import { blockReason, redact, StreamRedactor, type GuardrailRules, type HitKind, type Hits, type ModerationPort } from '../guardrails/index.ts';
import type { ChatRequest, ChatResponse, CompletionRequest, CompletionResponse, ContentPart, EmbeddingResponse, StreamEvent } from '../wire/index.ts';

type Block = Record<string, unknown>;

export interface GuardrailStageDeps {
  rules: () => GuardrailRules;
  moderation?: ModerationPort;
  /** Count hits of one kind. */
  onHit: (kind: HitKind, n: number) => void;
  log?: (obj: Record<string, unknown>, msg: string) => void;
}

function inputText(f: FlightView): string {
  if (f.op === 'chat') {
    const req = f.req as ChatRequest;
    const parts: string[] = [];
    for (const m of req.messages) {
      for (const p of m.content) {
        if (p.type === 'text') parts.push(p.text);
        else if (p.type === 'tool_result') parts.push(p.content);
      }
    }
    // What only an Anthropic upstream receives (documents, search results) is checked too.
    const messages = req.anthropicNative?.body['messages'];
    if (Array.isArray(messages)) {
      for (const m of messages) if (m !== null && typeof m === 'object') nativeOnlyText((m as Block)['content'], parts);
    }
    return parts.join('\n');
  }
  if (f.op === 'completion') {
    const p = (f.req as CompletionRequest).prompt;
    return typeof p === 'string' ? p : p.join('\n');
  }
  return '';
}

/** Every string inside a JSON value redacted (keys and other values kept): the JSON stays valid. */
function redactJsonStrings(value: unknown, rules: GuardrailRules, hits: Hits): unknown {
  if (typeof value === 'string') return redact(value, rules, hits);
  if (Array.isArray(value)) return value.map((v) => redactJsonStrings(v, rules, hits));
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = redactJsonStrings(v, rules, hits);
    return out;
  }
  return value;
}

/** A tool call's arguments (JSON text) with the strings inside redacted; unparseable text is redacted as text. */
function redactArguments(json: string, rules: GuardrailRules, hits: Hits): string {
  const before = Object.values(hits).reduce((a, n) => a + (n ?? 0), 0);
  let out: string;
  try {
    out = JSON.stringify(redactJsonStrings(JSON.parse(json), rules, hits));
  } catch {
    return redact(json, rules, hits);
  }
  return Object.values(hits).reduce((a, n) => a + (n ?? 0), 0) === before ? json : out;
}

/** The input side: the earlier turns' tool-call arguments go upstream too. */
function redactInputParts(parts: ContentPart[], rules: GuardrailRules, hits: Hits): ContentPart[] {
  return redactParts(parts, rules, hits).map((p) => (p.type === 'tool_call' ? { ...p, argumentsJson: redactArguments(p.argumentsJson, rules, hits) } : p));
}

function redactParts(parts: ContentPart[], rules: GuardrailRules, hits: Hits): ContentPart[] {
  return parts.map((p) =>
    p.type === 'text' ? { ...p, text: redact(p.text, rules, hits) } : p.type === 'tool_result' ? { ...p, content: redact(p.content, rules, hits) } : p,
  );
}

/**
 * Redacts an Anthropic block list (a native request's `system` / message content, or an Anthropic upstream's
 * verbatim answer blocks): text blocks, tool_result content (a string or text blocks), plain-text documents.
 * Thinking blocks are left as they are (their signature covers the text: an edit would be refused upstream).
 * Returns the same array when nothing matched.
 */
function redactBlocks(blocks: unknown[], rules: GuardrailRules, hits: Hits): unknown[] {
  let changed = false;
  const out = blocks.map((raw) => {
    if (raw === null || typeof raw !== 'object') return raw;
    const b = raw as Block;
    let next: Block = b;
    if (b['type'] === 'text' && typeof b['text'] === 'string') {
      const text = redact(b['text'], rules, hits);
      if (text !== b['text']) next = { ...b, text };
    } else if (b['type'] === 'tool_result') {
      const c = b['content'];
      if (typeof c === 'string') {
        const content = redact(c, rules, hits);
        if (content !== c) next = { ...b, content };
      } else if (Array.isArray(c)) {
        const content = redactBlocks(c, rules, hits);
        if (content !== c) next = { ...b, content };
      }
    } else if (b['type'] === 'tool_use' && b['input'] !== undefined) {
      const before = Object.values(hits).reduce((a, n) => a + (n ?? 0), 0);
      const input = redactJsonStrings(b['input'], rules, hits);
      if (Object.values(hits).reduce((a, n) => a + (n ?? 0), 0) !== before) next = { ...b, input };
    } else if (b['type'] === 'search_result' && Array.isArray(b['content'])) {
      const content = redactBlocks(b['content'], rules, hits);
      if (content !== b['content']) next = { ...b, content };
    } else if (b['type'] === 'document') {
      const src = b['source'] as Block | undefined;
      if (src !== undefined && src !== null && src['type'] === 'text' && typeof src['data'] === 'string') {
        const data = redact(src['data'], rules, hits);
        if (data !== src['data']) next = { ...b, source: { ...src, data } };
      } else if (src !== undefined && src !== null && src['type'] === 'content' && Array.isArray(src['content'])) {
        const content = redactBlocks(src['content'], rules, hits);
        if (content !== src['content']) next = { ...b, source: { ...src, content } };
      }
    }
    if (next !== b) changed = true;
    return next;
  });
  return changed ? out : blocks;
}

/** Text of the blocks only an Anthropic upstream receives (the canonical messages drop them): documents, search results. */
function nativeOnlyText(blocks: unknown, out: string[]): void {
  if (!Array.isArray(blocks)) return;
  for (const raw of blocks) {
    if (raw === null || typeof raw !== 'object') continue;
    const b = raw as Block;
    if (b['type'] === 'document') {
      const src = b['source'] as Block | undefined;
      if (src !== undefined && src !== null && src['type'] === 'text' && typeof src['data'] === 'string') out.push(src['data']);
      else if (src !== undefined && src !== null && src['type'] === 'content') collectText(src['content'], out);
    } else if (b['type'] === 'search_result') collectText(b['content'], out);
    else if (b['type'] === 'tool_result') nativeOnlyText(b['content'], out);
  }
}

function collectText(blocks: unknown, out: string[]): void {
  if (!Array.isArray(blocks)) return;
  for (const raw of blocks) {
    if (raw !== null && typeof raw === 'object' && (raw as Block)['type'] === 'text' && typeof (raw as Block)['text'] === 'string')
      out.push((raw as Block)['text'] as string);
  }
}

/**
 * An Anthropic client's native body (forwarded as sent to an Anthropic upstream, build-request.ts nativeBody):
 * its `system` and messages redacted as the canonical messages are. Same object when nothing matched.
 */
function redactNativeBody(body: Record<string, unknown>, rules: GuardrailRules, hits: Hits): Record<string, unknown> {
  let out = body;
  const system = body['system'];
  if (typeof system === 'string') {
    const text = redact(system, rules, hits);
    if (text !== system) out = { ...out, system: text };
  } else if (Array.isArray(system)) {
    const blocks = redactBlocks(system, rules, hits);
    if (blocks !== system) out = { ...out, system: blocks };
  }
  const meta = body['metadata'];
  if (meta !== null && typeof meta === 'object' && typeof (meta as Block)['user_id'] === 'string') {
    const userId = redact((meta as Block)['user_id'] as string, rules, hits);
    if (userId !== (meta as Block)['user_id']) out = { ...out, metadata: { ...(meta as Block), user_id: userId } };
  }
  const messages = body['messages'];
  if (Array.isArray(messages)) {
    let changed = false;
    const next = messages.map((raw) => {
      if (raw === null || typeof raw !== 'object') return raw;
      const m = raw as Block;
      const c = m['content'];
      if (typeof c === 'string') {
        const text = redact(c, rules, hits);
        if (text === c) return m;
        changed = true;
        return { ...m, content: text };
      }
      if (!Array.isArray(c)) return m;
      const blocks = redactBlocks(c, rules, hits);
      if (blocks === c) return m;
      changed = true;
      return { ...m, content: blocks };
    });
    if (changed) out = { ...out, messages: next };
  }
  return out;
}

/** The per-kind maximum of two hit counts over the same text seen twice (canonical and native forms). */
function mergeHits(a: Hits, b: Hits): Hits {
  const out: Hits = { ...a };
  for (const [k, n] of Object.entries(b) as [HitKind, number][]) out[k] = Math.max(out[k] ?? 0, n);
  return out;
}

/** A stream's redaction state: text and reasoning runs held back, tool-call arguments held until the call ends. */
interface StreamState {
  text: StreamRedactor;
  reasoning: StreamRedactor;
  args: Map<number, string>;
  argHits: Hits;
}

/** The held runs other than `keep`, as events, in order: text, reasoning, then each tool call's redacted arguments. */
function flushHeld(st: StreamState, keep: 'text' | 'reasoning' | 'args' | 'none', rules: GuardrailRules): StreamEvent[] {
  const out: StreamEvent[] = [];
  if (keep !== 'text') {
    const t = st.text.flush();
    if (t.length !== 0) out.push({ type: 'text', text: t });
  }
  if (keep !== 'reasoning') {
    const t = st.reasoning.flush();
    if (t.length !== 0) out.push({ type: 'reasoning', text: t });
  }
  if (keep !== 'args' && st.args.size !== 0) {
    for (const [index, json] of st.args) out.push({ type: 'tool_call_delta', index, argumentsDelta: redactArguments(json, rules, st.argHits) });
    st.args.clear();
  }
  return out;
}

export function createGuardrailStage(deps: GuardrailStageDeps): Stage {
  const streams = new WeakMap<FlightView, StreamState>();
  const record = (f: FlightView, where: string, hits: Hits): void => {
    let any = false;
    for (const [kind, n] of Object.entries(hits) as [HitKind, number][]) {
      if (n > 0) {
        any = true;
        deps.onHit(kind, n);
        // Recorded on the request's usage record too (serving.guardrailHits), input and output summed per kind.
        const note = (f.serving ??= {});
        const sum = (note.guardrailHits ??= {});
        sum[kind] = (sum[kind] ?? 0) + n;
      }
    }
    if (any) deps.log?.({ requestId: f.ctx.requestId, accountId: f.ctx.key.accountId, where, guardrailHits: hits }, 'guardrail hits');
  };

  return {
    name: 'guardrails',
    async beforeAdmit(f) {
      if (f.ctx.guardrails !== true || f.op === 'embeddings') return;
      const rules = deps.rules();
      const text = inputText(f);
      const blocked = blockReason(text, rules);
      if (blocked !== undefined) {
        record(f, 'input', { [blocked.kind]: 1 });
        throw new TokenGridError(
          'content_blocked',
          'The input was refused by the security protection pack (it matches a blocked keyword or pattern). Nothing was charged.',
        );
      }
      if (deps.moderation !== undefined && text.length !== 0) {
        let verdict: { flagged: boolean; categories?: string[] } = { flagged: false };
        try {
          verdict = await deps.moderation.moderate(text);
        } catch (e) {
          // Fail open: an unavailable moderation service does not stop the account's traffic (logged, counted).
          deps.onHit('moderation_error', 1);
          deps.log?.({ requestId: f.ctx.requestId, err: (e as Error).message }, 'guardrail moderation failed; input passed');
        }
        if (verdict.flagged) {
          record(f, 'input', { moderation: 1 });
          const cats = verdict.categories !== undefined && verdict.categories.length > 0 ? ` (${verdict.categories.join(', ')})` : '';
          throw new TokenGridError('content_blocked', `The input was refused by the content moderation service${cats}. Nothing was charged.`);
        }
      }
      let hits: Hits = {};
      if (f.op === 'chat') {
        const req = f.req as ChatRequest;
        const messages = req.messages.map((m) => ({ ...m, content: redactInputParts(m.content, rules, hits) }));
        let next: ChatRequest = Object.keys(hits).length !== 0 ? { ...req, messages } : req;
        // The end-user id goes upstream too (OpenAI `user`, Anthropic metadata.user_id), often an e-mail address.
        if (req.user !== undefined) {
          const user = redact(req.user, rules, hits);
          if (user !== req.user) next = { ...next, user };
        }
        // An Anthropic upstream receives the client's native body, not the canonical messages: redact it too.
        const native = req.anthropicNative;
        if (native !== undefined) {
          const nativeHits: Hits = {};
          const body = redactNativeBody(native.body, rules, nativeHits);
          if (body !== native.body) next = { ...next, anthropicNative: { ...native, body } };
          hits = mergeHits(hits, nativeHits);
        }
        if (next !== req) f.req = next;
      } else {
        const req = f.req as CompletionRequest;
        const prompt = typeof req.prompt === 'string' ? redact(req.prompt, rules, hits) : req.prompt.map((p) => redact(p, rules, hits));
        if (Object.keys(hits).length !== 0) f.req = { ...req, prompt };
      }
      record(f, 'input', hits);
    },
    onAnswer(f, res) {
      if (f.ctx.guardrails !== true || f.op === 'embeddings') return res;
      const rules = deps.rules();
      const hits: Hits = {};
      let out: ChatResponse | CompletionResponse | EmbeddingResponse = res;
      if (f.op === 'chat') {
        const r = res as ChatResponse;
        const content = redactParts(r.content, rules, hits).map((p) =>
          p.type === 'tool_call' ? { ...p, argumentsJson: redactArguments(p.argumentsJson, rules, hits) } : p,
        );
        const redacted: ChatResponse = { ...r, content };
        // Reasoning too, except for an Anthropic client (its thinking is signed: see onEvent).
        if (r.reasoning !== undefined && f.ctx.family !== 'anthropic') redacted.reasoning = redact(r.reasoning, rules, hits);
        // An Anthropic upstream's verbatim blocks are what an Anthropic client receives (encode-response.ts).
        if (r.anthropicContent !== undefined) {
          const blockHits: Hits = {};
          const blocks = redactBlocks(r.anthropicContent, rules, blockHits) as Record<string, unknown>[];
          if (blocks !== r.anthropicContent) redacted.anthropicContent = blocks;
          for (const [k, n] of Object.entries(mergeHits(hits, blockHits)) as [HitKind, number][]) hits[k] = n;
        }
        out = redacted;
      } else {
        const r = res as CompletionResponse;
        out = { ...r, choices: r.choices.map((c) => ({ ...c, text: redact(c.text, rules, hits) })) };
      }
      if (Object.keys(hits).length === 0) return res;
      record(f, 'output', hits);
      return out;
    },
    onEvent(f, ev): StreamEvent | StreamEvent[] | null {
      if (f.ctx.guardrails !== true) return ev;
      let st = streams.get(f);
      // Reasoning is redacted too, except for an Anthropic client: its thinking is signed (an edit would make the
      // next turn fail upstream). Tool-call arguments are held until the call ends and sent redacted, in one piece.
      const plainReasoning = ev.type === 'reasoning' && ev.signature === undefined && ev.block === undefined && f.ctx.family !== 'anthropic';
      if (ev.type === 'text' || plainReasoning || ev.type === 'tool_call_delta') {
        if (st === undefined) {
          st = { text: new StreamRedactor(deps.rules()), reasoning: new StreamRedactor(deps.rules()), args: new Map(), argHits: {} };
          streams.set(f, st);
        }
        const kind = ev.type === 'text' ? 'text' : ev.type === 'reasoning' ? 'reasoning' : 'args';
        const out = flushHeld(st, kind, deps.rules());
        if (ev.type === 'tool_call_delta') {
          st.args.set(ev.index, (st.args.get(ev.index) ?? '') + ev.argumentsDelta);
        } else {
          const text = (kind === 'text' ? st.text : st.reasoning).push((ev as { text: string }).text);
          if (text.length !== 0) out.push(kind === 'text' ? { type: 'text', text } : { type: 'reasoning', text });
        }
        return out.length === 0 ? null : out.length === 1 ? out[0]! : out;
      }
      if (st === undefined || ev.type === 'start') return ev;
      // Any other event ends the runs: emit what was held back first.
      const out = flushHeld(st, 'none', deps.rules());
      if (ev.type === 'finish' || ev.type === 'usage') {
        const hits: Hits = { ...st.argHits };
        for (const h of [st.text.hits, st.reasoning.hits]) for (const [k, n] of Object.entries(h) as [HitKind, number][]) hits[k] = (hits[k] ?? 0) + n;
        record(f, 'output', hits);
        streams.delete(f);
      }
      out.push(ev);
      return out.length === 1 ? ev : out;
    },
  };
}

/**
 * An HTTP moderation service as the moderation port: POST `{"input": text}` as JSON; the answer is either
 * OpenAI's moderation shape (`{results: [{flagged, categories: {name: bool}}]}`) or `{flagged, categories: [..]}`.
 * A non-2xx answer, a timeout or an unreadable body throws (the stage then lets the input pass, counted).
 */
export function httpModerationPort(opts: { url: string; apiKey?: string; timeoutMs?: number }): ModerationPort {
  return {
    async moderate(text) {
      const res = await fetch(opts.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(opts.apiKey !== undefined ? { authorization: `Bearer ${opts.apiKey}` } : {}) },
        body: JSON.stringify({ input: text }),
        signal: AbortSignal.timeout(opts.timeoutMs ?? 2000),
      });
      if (!res.ok) throw new Error(`moderation service answered ${res.status}`);
      const body = (await res.json()) as {
        flagged?: unknown;
        categories?: unknown;
        results?: { flagged?: unknown; categories?: Record<string, unknown> }[];
      };
      if (Array.isArray(body.results)) {
        const flagged = body.results.some((r) => r.flagged === true);
        const categories = body.results.flatMap((r) =>
          Object.entries(r.categories ?? {})
            .filter(([, v]) => v === true)
            .map(([k]) => k),
        );
        return { flagged, categories };
      }
      if (typeof body.flagged !== 'boolean') throw new Error('moderation service answer has no flagged field');
      const categories = Array.isArray(body.categories) ? body.categories.filter((c): c is string => typeof c === 'string') : [];
      return { flagged: body.flagged, categories };
    },
  };
}
