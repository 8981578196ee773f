import type { Dispatcher } from 'undici';
import type { ChatRequest, ChatResponse, CompletionRequest, CompletionResponse, EmbeddingRequest, EmbeddingResponse, StreamEvent } from '../wire/index.ts';

export type AdapterKind = 'openai-compatible' | 'anthropic' | 'gemini';

/** A configured upstream: name, adapter, base URL, key. */
export interface ProviderConfig {
  name: string;
  adapter: AdapterKind;
  /** e.g. https://api.deepseek.com/v1 (openai-compatible: the path before /chat/completions), https://api.anthropic.com, https://generativelanguage.googleapis.com */
  baseUrl: string;
  apiKey?: string;
  headers?: Record<string, string>;
  /** Human label shown in /v1/models owned_by and logs, e.g. "deepseek" or "mock (offline emulator)". */
  label?: string;
  /** True for the offline emulator, so nobody mistakes it for a real model. */
  isMock?: boolean;
}

/**
 * What the adapters and undici use of an abort signal. An AbortSignal is one; the HTTP shell passes a
 * lighter object (no EventTarget, no DOMException) because it builds one for every request.
 */
export interface CallSignal {
  readonly aborted: boolean;
  readonly reason?: unknown;
  addEventListener(type: 'abort', listener: () => void, options?: { once?: boolean }): void;
  removeEventListener(type: 'abort', listener: () => void): void;
}

/** One upstream call: which provider, which upstream model, the shared connection pool, and the abort signal. */
export interface UpstreamCall {
  provider: ProviderConfig;
  upstreamModel: string;
  dispatcher: Dispatcher;
  /** Aborted when the client disconnects or the gateway gives up; the adapter must abort the upstream request. */
  signal: CallSignal;
  requestId: string;
  /** Time allowed until response headers arrive. */
  timeoutMsHeaders: number;
  /** Time allowed between two body chunks once streaming. */
  timeoutMsBody: number;
}

export type UpstreamErrorKind =
  | 'connect' // could not connect / connection reset before a response
  | 'timeout' // no headers (or no body bytes) within the time allowed
  | 'status' // upstream answered with a non-2xx status
  | 'malformed' // upstream answered 2xx with a body we cannot parse
  | 'disconnect' // the stream ended before its terminal event
  | 'aborted'; // our own signal aborted it (client went away)

/** Every adapter failure is one of these; adapters never retry (the gateway owns the only retry loop). */
export class UpstreamError extends Error {
  constructor(
    readonly kind: UpstreamErrorKind,
    message: string,
    readonly status?: number,
    /** The upstream's error body, if any (for logs; never forwarded verbatim to clients). */
    readonly body?: string,
  ) {
    super(message);
    this.name = 'UpstreamError';
  }
  /** Retryable on another deployment if nothing reached the client yet: connect errors, timeouts, 5xx, 429, malformed. */
  get retryable(): boolean {
    if (this.kind === 'aborted') return false;
    if (this.kind === 'status') return this.status === 429 || (this.status !== undefined && this.status >= 500);
    return true;
  }
}

/** A started upstream stream: headers were 2xx; events are parsed canonical events. */
export interface UpstreamStream {
  events: AsyncIterable<StreamEvent>;
  /**
   * Optional: the same events grouped as they were parsed from one upstream read (never an empty group).
   * A consumer reads either `events` or `batches`, not both. The gateway prefers batches: one promise per
   * upstream read instead of one per event.
   */
  batches?: AsyncIterable<StreamEvent[]>;
}

export interface ProviderAdapter {
  readonly kind: AdapterKind;
  chat(call: UpstreamCall, req: ChatRequest): Promise<ChatResponse>;
  /** Resolves once the upstream answered 2xx; rejects with UpstreamError otherwise. Iterating may throw UpstreamError. */
  chatStream(call: UpstreamCall, req: ChatRequest): Promise<UpstreamStream>;
  completion?(call: UpstreamCall, req: CompletionRequest): Promise<CompletionResponse>;
  completionStream?(call: UpstreamCall, req: CompletionRequest): Promise<UpstreamStream>;
  embeddings?(call: UpstreamCall, req: EmbeddingRequest): Promise<EmbeddingResponse>;
}
