/**
 * The exact response cache and prompt-prefix stickiness as one pipeline stage (issue 17 items 4 and 5).
 *
 * - beforeAdmit: a chat request whose prompt prefix (tools, system and earlier messages) reaches
 *   `stickyMinTokens` gets the prefix's hash as its route key: the plan orders the model's deployments by
 *   rendezvous hashing of it, so the vendor's prompt cache on that deployment hits (routing/plan.ts).
 * - beforeDispatch: a deterministic chat request (temperature 0, or `x-tokengrid-cache: on`; never with
 *   `x-tokengrid-cache: off`) is looked up by (account, normalized request) once the model is resolved and the
 *   hold taken. A hit answers without dispatch: the cached answer (or its events, replayed in the caller's
 *   dialect) is metered and settled as usual, charged at `chargeRatio` of its rated cost with vendor cost 0,
 *   `serving.cache = 'hit'` and `serving.savings.cache` = the original answer's vendor cost. `x-tokengrid-cache:
 *   hit|miss` goes on the response.
 * - onAnswer / onEvent / afterSettle: a miss's answer is kept and, once its request settled `ok`, stored with the
 *   usage it was charged (`serving.cache = 'stored'`). Not stored: errors, answers cut by the gateway, `length`
 *   unless the client set max_tokens (and, non-streamed, the balance did not cut the grant below it), content_filter, and Anthropic thinking signatures or verbatim blocks (a
 *   replay could not carry them), and answers to requests the security pack redacted or flagged
 *   (`serving.guardrailHits`: personal data is never kept beyond the request).
 * A cache backend that fails is a miss (logged), never an error to the client.
 */
import { vendorCostMicros } from '../catalog/index.ts';
import { sha256Hex, type Clock } from '../core/index.ts';
import type { FlightView, Stage } from '../gateway/index.ts';
import { answerOfEvents, eventsOfAnswer, isCacheable, keepEvent, promptPrefixKey, responseCacheKey, type ResponseCachePort } from '../cache/index.ts';
import type { ChatRequest, ChatResponse, ServingNote, StreamEvent } from '../wire/index.ts';

export interface CacheStageDeps {
  /** The response cache's backend; undefined: the response cache is off. */
  cache: ResponseCachePort | undefined;
  clock: Clock;
  ttlMs: number;
  /** A hit is charged this fraction of the rated cost of the answer it replays. */
  chargeRatio: { num: number; den: number };
  /** Prompt-prefix stickiness from this many estimated prefix tokens; undefined: off. */
  stickyMinTokens: number | undefined;
  /** A streamed answer with more text than this (characters) is neither kept nor stored (default 1 Mi). */
  maxAnswerChars?: number;
  /** Counts lookups by result (hit, miss, stored, error). */
  onResult?: (result: 'hit' | 'miss' | 'stored' | 'error') => void;
  log?: (obj: Record<string, unknown>, msg: string) => void;
}

interface Pending {
  hash: string;
  events: StreamEvent[] | undefined;
  answer: ChatResponse | undefined;
  replayable: boolean;
  /** Characters of text kept so far (a stream). */
  chars: number;
}

/**
 * An answer worth storing: a natural stop (or the client's own max_tokens), and no guardrail hit on the request.
 * A non-streamed upstream is capped at the hold's grant: a `length` stop under a grant the balance cut short is
 * the balance's, not the client's, and is not stored (a later request with funds would get the cut answer).
 */
function storable(f: FlightView, finish: ChatResponse['finishReason']): boolean {
  if (f.serving?.guardrailHits !== undefined) return false;
  if (finish === 'length') return (f.req as ChatRequest).maxTokensOutput !== undefined && (f.stream || f.tokensOutputGranted >= f.tokensOutputMax);
  return finish === 'stop' || finish === 'tool_calls';
}

function note(f: FlightView, add: ServingNote): void {
  const savings = add.savings === undefined ? f.serving?.savings : { ...f.serving?.savings, ...add.savings };
  f.serving = { ...f.serving, ...add, ...(savings === undefined ? {} : { savings }) };
}

export function createCacheStage(deps: CacheStageDeps): Stage {
  const pending = new WeakMap<FlightView, Pending>();
  const cache = deps.cache;
  const maxAnswerChars = deps.maxAnswerChars ?? 1024 * 1024;
  const stage: Stage = {
    name: 'cache',
    async beforeDispatch(f) {
      if (cache === undefined || f.op !== 'chat' || f.model === undefined) return undefined;
      const req = f.req as ChatRequest;
      if (!isCacheable(req, f.ctx.cache)) return undefined;
      const accountId = f.ctx.key.accountId;
      const hash = responseCacheKey(accountId, f.model.id, req);
      let entry;
      try {
        entry = await cache.get(accountId, hash);
      } catch (err) {
        deps.onResult?.('error');
        deps.log?.({ err, requestId: f.ctx.requestId }, 'response cache read failed: served as a miss');
      }
      if (entry !== undefined && entry.expiresAtMs <= deps.clock.nowMs()) entry = undefined;
      const res = f.ctx.res;
      if (res !== undefined && !res.headersSent) res.setHeader('x-tokengrid-cache', entry === undefined ? 'miss' : 'hit');
      if (entry === undefined) {
        deps.onResult?.('miss');
        pending.set(f, { hash, events: f.stream ? [] : undefined, answer: undefined, replayable: true, chars: 0 });
        return undefined;
      }
      deps.onResult?.('hit');
      note(f, { cache: 'hit', savings: { cache: entry.vendorCostMicros } });
      // No deployment serves a hit: a prefix-sticky plan was not used.
      if (f.serving?.stickyPrefix !== undefined) delete f.serving.stickyPrefix;
      return f.stream
        ? { kind: 'events', events: eventsOfAnswer(entry.answer), source: 'cache', chargeRatio: deps.chargeRatio }
        : { kind: 'answer', answer: entry.answer, source: 'cache', chargeRatio: deps.chargeRatio };
    },
    onEvent(f, ev) {
      const p = pending.get(f);
      if (p === undefined || p.events === undefined) return ev;
      if (ev.type === 'reasoning' && (ev.signature !== undefined || ev.block !== undefined)) p.replayable = false;
      p.chars += keepEvent(p.events, ev);
      if (p.chars > maxAnswerChars) {
        // Too large to store: stop keeping it (the answer is delivered as usual, not cached).
        p.replayable = false;
        p.events = undefined;
        return ev;
      }
      if (ev.type === 'finish' && p.replayable && storable(f, ev.finishReason)) note(f, { cache: 'stored' });
      return ev;
    },
    onAnswer(f, res) {
      const p = pending.get(f);
      if (p === undefined) return res;
      const answer = res as ChatResponse;
      if (answer.anthropicContent === undefined && storable(f, answer.finishReason)) {
        p.answer = answer;
        note(f, { cache: 'stored' });
      }
      return res;
    },
    afterSettle(f) {
      const p = pending.get(f);
      if (p === undefined) return;
      pending.delete(f);
      if (cache === undefined || f.status !== 'ok' || f.serving?.cache !== 'stored' || f.usage === undefined || f.model === undefined) return;
      const answer = p.answer !== undefined ? { ...p.answer, usage: f.usage } : answerOfEvents(p.events ?? [], f.usage);
      if (answer === undefined) return;
      if (answer.usageEstimated !== undefined) delete answer.usageEstimated;
      const entry = { answer, vendorCostMicros: vendorCostMicros(f.model, f.usage), expiresAtMs: deps.clock.nowMs() + deps.ttlMs };
      cache.set(f.ctx.key.accountId, p.hash, entry).then(
        () => deps.onResult?.('stored'),
        (err: unknown) => {
          deps.onResult?.('error');
          deps.log?.({ err, requestId: f.ctx.requestId }, 'response cache write failed');
        },
      );
    },
  };
  if (deps.stickyMinTokens !== undefined) {
    const min = deps.stickyMinTokens;
    stage.beforeAdmit = (f) => {
      if (f.op === 'chat') {
        const key = promptPrefixKey(f.req as ChatRequest, min);
        // Per account: every tenant reaches the vendor under the gateway's one organization, whose prompt cache
        // they share. A prefix routed the same way for every tenant would let one tenant tell, from the cached
        // tokens its own usage reports, that another sent that prefix (a system prompt, a document) just before.
        if (key !== undefined) f.routeKey = sha256Hex(`${f.ctx.key.accountId}\n${key}`);
      }
    };
  }
  return stage;
}
