/**
 * One registry of outcome codes (habit 5). Every code has an HTTP status, an OpenAI error `type`,
 * an Anthropic error `type`, and an entry in docs/errors.md (test/errors-doc.test.ts keeps them in sync).
 */
export interface ErrorCodeSpec {
  status: number;
  openaiType: string;
  anthropicType: string;
  summary: string;
}

export const ERROR_CODES = {
  invalid_json: { status: 400, openaiType: 'invalid_request_error', anthropicType: 'invalid_request_error', summary: 'The request body is not valid JSON.' },
  invalid_request: {
    status: 400,
    openaiType: 'invalid_request_error',
    anthropicType: 'invalid_request_error',
    summary: 'A field is missing, has the wrong type or an out-of-range value.',
  },
  invalid_api_key: {
    status: 401,
    openaiType: 'invalid_request_error',
    anthropicType: 'authentication_error',
    summary: 'No key, an unknown key, or a malformed key.',
  },
  api_key_revoked: { status: 401, openaiType: 'invalid_request_error', anthropicType: 'authentication_error', summary: 'The key was revoked.' },
  otp_invalid: {
    status: 401,
    openaiType: 'invalid_request_error',
    anthropicType: 'authentication_error',
    summary: 'A console sign-in code is wrong, expired or out of attempts.',
  },
  otp_throttled: {
    status: 429,
    openaiType: 'rate_limit_error',
    anthropicType: 'rate_limit_error',
    summary: 'Too many sign-in codes were asked for one phone number; retry after the Retry-After seconds.',
  },
  api_key_expired: { status: 401, openaiType: 'invalid_request_error', anthropicType: 'authentication_error', summary: 'The key is past its expiry time.' },
  permission_denied: {
    status: 403,
    openaiType: 'permission_error',
    anthropicType: 'permission_error',
    summary: 'The caller may not perform this action (admin role, account scope).',
  },
  content_blocked: {
    status: 400,
    openaiType: 'invalid_request_error',
    anthropicType: 'invalid_request_error',
    summary:
      'The security protection pack refused the input (an operator keyword or pattern, or the moderation service); nothing was sent upstream or charged.',
  },
  no_deployment_in_region: {
    status: 400,
    openaiType: 'invalid_request_error',
    anthropicType: 'invalid_request_error',
    summary: 'The account is pinned to regions (data residency) where the model and its fallbacks have no deployment.',
  },
  model_not_allowed: { status: 403, openaiType: 'permission_error', anthropicType: 'permission_error', summary: 'The key is not allowed to use this model.' },
  model_not_found: { status: 404, openaiType: 'invalid_request_error', anthropicType: 'not_found_error', summary: 'No model or alias of that name exists.' },
  not_found: { status: 404, openaiType: 'invalid_request_error', anthropicType: 'not_found_error', summary: 'The route or the resource does not exist.' },
  method_not_allowed: {
    status: 405,
    openaiType: 'invalid_request_error',
    anthropicType: 'invalid_request_error',
    summary: 'The route exists but not for this HTTP method.',
  },
  conflict: {
    status: 409,
    openaiType: 'invalid_request_error',
    anthropicType: 'invalid_request_error',
    summary: 'The resource already exists or is in a state that forbids the change.',
  },
  idempotency_key_reused: {
    status: 409,
    openaiType: 'invalid_request_error',
    anthropicType: 'invalid_request_error',
    summary: 'The Idempotency-Key was already used with a different request body.',
  },
  request_too_large: {
    status: 413,
    openaiType: 'invalid_request_error',
    anthropicType: 'request_too_large',
    summary: 'The request body exceeds the configured limit.',
  },
  unsupported_media_type: {
    status: 415,
    openaiType: 'invalid_request_error',
    anthropicType: 'invalid_request_error',
    summary: 'The body is not application/json.',
  },
  unprocessable: {
    status: 422,
    openaiType: 'invalid_request_error',
    anthropicType: 'invalid_request_error',
    summary: 'The request is well-formed but breaks a business rule (second trial, forged code, downgrade over allowance).',
  },
  idempotency_in_progress: {
    status: 409,
    openaiType: 'invalid_request_error',
    anthropicType: 'invalid_request_error',
    summary:
      'A streamed request with the same Idempotency-Key is still running (streams are not replayed), or a non-streamed duplicate waited 5 minutes for it in vain.',
  },
  rate_limited: {
    status: 429,
    openaiType: 'rate_limit_error',
    anthropicType: 'rate_limit_error',
    summary: 'A requests-per-minute, tokens-per-minute or concurrency limit was hit.',
  },
  insufficient_quota: {
    status: 429,
    openaiType: 'insufficient_quota',
    anthropicType: 'rate_limit_error',
    summary: 'No bucket can pay for the request; the message says which ran out and when it renews.',
  },
  payment_required: {
    status: 402,
    openaiType: 'insufficient_quota',
    anthropicType: 'billing_error',
    summary: 'The account must pay or top up before this action (a wallet order without funds).',
  },
  upstream_busy: {
    status: 429,
    openaiType: 'rate_limit_error',
    anthropicType: 'rate_limit_error',
    summary: "The upstream's queue for this request's priority class is full (QoS); retry after the Retry-After seconds.",
  },
  internal_error: {
    status: 500,
    openaiType: 'server_error',
    anthropicType: 'api_error',
    summary: 'A bug or broken infrastructure inside TokenGrid; the request id is in the log.',
  },
  upstream_error: {
    status: 502,
    openaiType: 'server_error',
    anthropicType: 'api_error',
    summary: 'Every attempted upstream deployment failed (5xx, 429, connection error, malformed answer).',
  },
  no_healthy_deployment: {
    status: 503,
    openaiType: 'server_error',
    anthropicType: 'overloaded_error',
    summary: 'All deployments of the model are in circuit-breaker cool-down.',
  },
  upstream_queue_timeout: {
    status: 503,
    openaiType: 'server_error',
    anthropicType: 'overloaded_error',
    summary: 'The request could not get an upstream slot before its queue deadline (QoS); retry after the Retry-After seconds.',
  },
  charging_unavailable: {
    status: 503,
    openaiType: 'server_error',
    anthropicType: 'api_error',
    summary: 'The charging store could not be reached; prepaid requests fail closed.',
  },
  shutting_down: { status: 503, openaiType: 'server_error', anthropicType: 'overloaded_error', summary: 'The server is draining for shutdown.' },
  upstream_timeout: { status: 504, openaiType: 'server_error', anthropicType: 'api_error', summary: 'No upstream answered within the first-byte timeout.' },
} as const satisfies Record<string, ErrorCodeSpec>;

export type ErrorCode = keyof typeof ERROR_CODES;

/** An error that carries a registered code to the HTTP shell, which renders it in the API family's own format. */
export class TokenGridError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly param: string | null = null,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'TokenGridError';
  }
  get status(): number {
    return ERROR_CODES[this.code].status;
  }
}
