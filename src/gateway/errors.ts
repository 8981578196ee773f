import { TokenGridError, type ErrorCode } from '../core/index.ts';
import { UpstreamError } from '../providers/index.ts';

/** The client-facing error after every attempt failed: 504 if the last failure was a timeout, else 502. */
export function upstreamFailure(last: unknown, attempts: number): TokenGridError {
  if (last instanceof UpstreamError) {
    if (last.kind === 'timeout')
      return new TokenGridError('upstream_timeout', `The upstream model did not answer in time (${attempts} attempt${attempts === 1 ? '' : 's'}).`);
    if (last.kind === 'status' && last.status !== undefined && (last.status === 400 || last.status === 422)) {
      return new TokenGridError('invalid_request', `The upstream rejected the request: ${summarize(last.body) ?? last.message}`);
    }
    const what = last.kind === 'status' ? `HTTP ${last.status}` : last.kind;
    return new TokenGridError('upstream_error', `The upstream model failed (${what}) after ${attempts} attempt${attempts === 1 ? '' : 's'}.`);
  }
  return new TokenGridError('upstream_error', `The upstream model failed after ${attempts} attempt${attempts === 1 ? '' : 's'}.`);
}

/** Pull a human message out of an upstream error body, without forwarding the body verbatim. */
function summarize(body: string | undefined): string | undefined {
  if (!body) return undefined;
  try {
    const parsed = JSON.parse(body) as { error?: { message?: unknown } | string; message?: unknown };
    const m = typeof parsed.error === 'object' ? parsed.error?.message : (parsed.message ?? parsed.error);
    if (typeof m === 'string') return m.slice(0, 500);
  } catch {
    /* not JSON */
  }
  return body.slice(0, 200);
}

/**
 * A refusal clients act on (issue 13, item 4): an exhausted balance or a permission refusal says
 * `x-should-retry: false` (SDKs otherwise retry a 429 silently); a balance that is only held by requests in
 * progress says retry shortly (`retry-after`).
 */
export function chargingRefusal(code: string, message: string, details?: Record<string, unknown>): TokenGridError {
  const busy = typeof details?.heldCoins === 'number' && details.heldCoins > 0;
  const headers: Record<string, string> = busy ? { 'retry-after': '1', 'x-should-retry': 'true' } : { 'x-should-retry': 'false' };
  const known: Record<string, ErrorCode> = {
    insufficient_quota: 'insufficient_quota',
    member_cap_reached: 'insufficient_quota',
    model_not_priced: 'model_not_allowed',
    rate_limited: 'rate_limited',
    duplicate_request: 'conflict',
  };
  return new TokenGridError(known[code] ?? 'insufficient_quota', message, null, headers);
}

/** True for the error the gateway raises when the client went away mid-request. */
export function isClientAbort(e: unknown): boolean {
  return e instanceof UpstreamError && e.kind === 'aborted';
}
