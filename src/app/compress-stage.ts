/**
 * The context compression stage (issue 17 item 6), over the pure `compress` module. Opt-in per request: the
 * context says `compress: true` when the request sent `x-tokengrid-compress: on`, or when the account has the
 * add-on feature `context_compression` and the request did not send `x-tokengrid-compress: off` (set at
 * authentication, `api/server.ts`). Other requests pay one property read.
 *
 * - beforeAdmit (nothing estimated or held yet): a chat request's stale tool outputs and repeated blocks are
 *   shortened (`compressChat`; its guard keeps spans the latest turn refers to), `flight.req` is replaced, so the
 *   hold, the upstream and the charge all see the shorter input. `serving.compressedTokens` records the estimated
 *   input tokens removed.
 * - beforeDispatch (the model is chosen): `serving.savings.compression` = the vendor cost of those tokens at the
 *   chosen model's input price (integer micros), merged into the note other stages write.
 */
import type { ModelSpec } from '../catalog/index.ts';
import { compressChat, DEFAULT_COMPRESS_OPTIONS, type CompressOptions } from '../compress/index.ts';
import type { FlightView, Stage } from '../gateway/index.ts';
import type { ChatRequest } from '../wire/index.ts';

export interface CompressStageDeps {
  options?: Partial<CompressOptions>;
  /** Called per request that compression changed or its guard acted on (metrics): tokens removed, outputs the guard kept lines of. */
  onCompressed?: (tokens: number, guarded: number) => void;
  log?: (obj: Record<string, unknown>, msg: string) => void;
}

/** Vendor cost of `tokens` uncached input tokens of `model`, in micros (integers, rounded to nearest). */
export function inputCostMicros(model: ModelSpec, tokens: number): number {
  return Math.round((tokens * model.cost.inputMicrosPerMillion) / 1_000_000);
}

export function createCompressStage(deps: CompressStageDeps = {}): Stage {
  const opts: CompressOptions = { ...DEFAULT_COMPRESS_OPTIONS, ...deps.options };
  const removed = new WeakMap<FlightView, number>();
  return {
    name: 'compress',
    beforeAdmit(f) {
      if (f.ctx.compress !== true || f.op !== 'chat') return;
      const out = compressChat(f.req as ChatRequest, opts);
      if (out.plan.guardOff === true)
        deps.log?.({ requestId: f.ctx.requestId }, 'compression guard: the latest turn names too many identifiers to tell what it needs; no output cut');
      if (out.plan.guarded > 0)
        deps.log?.(
          { requestId: f.ctx.requestId, guarded: out.plan.guarded, guardHits: out.plan.guardHits },
          'compression guard kept spans the latest turn refers to',
        );
      const changed = out.plan.edits.length !== 0 && out.removedTokens !== 0;
      if (changed || out.plan.guarded > 0) deps.onCompressed?.(changed ? out.removedTokens : 0, out.plan.guarded);
      if (!changed) return;
      f.req = out.req;
      removed.set(f, out.removedTokens);
      f.serving = { ...f.serving, compressedTokens: out.removedTokens };
    },
    beforeDispatch(f) {
      if (f.ctx.compress !== true) return;
      const tokens = removed.get(f);
      if (tokens === undefined || f.model === undefined) return;
      const saved = inputCostMicros(f.model, tokens);
      f.serving = { ...f.serving, savings: { ...f.serving?.savings, compression: saved } };
    },
  };
}
