import type { ServerResponse } from 'node:http';
import { ERROR_CODES, TokenGridError, type ErrorCode } from '../core/index.ts';
import { anthropicErrorBody } from '../wire/anthropic/index.ts';
import { openaiErrorBody } from '../wire/openai/index.ts';
import { sendJson, type Family } from './http.ts';

export interface RenderedError {
  status: number;
  body: unknown;
  headers: Record<string, string>;
}

/** One table per API family (unkey's codeToStatus): a code becomes a status and that family's body shape. */
export function renderError(
  family: Family,
  code: ErrorCode,
  message: string,
  param: string | null = null,
  headers: Record<string, string> = {},
): RenderedError {
  const status = ERROR_CODES[code].status;
  // Refusals a retry cannot change (no quota, no permission, a bad key) tell SDKs not to retry (issue 13, item 4).
  if ((status === 401 || status === 402 || status === 403 || code === 'insufficient_quota') && headers['x-should-retry'] === undefined) {
    headers = { ...headers, 'x-should-retry': 'false' };
  }
  const body = family === 'anthropic' ? anthropicErrorBody(code, message) : openaiErrorBody(code, message, param);
  return { status, body, headers };
}

export function toTokenGridError(e: unknown): TokenGridError | undefined {
  return e instanceof TokenGridError ? e : undefined;
}

export function sendError(res: ServerResponse, family: Family, e: TokenGridError | { code: ErrorCode; message: string; param?: string | null }): void {
  const headers = e instanceof TokenGridError ? e.headers : {};
  const r = renderError(family, e.code, e.message, e.param ?? null, headers);
  if (res.headersSent) {
    res.end();
    return;
  }
  sendJson(res, r.status, r.body, r.headers);
}
