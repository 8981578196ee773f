/**
 * Canonical request, response and stream events. Every inbound API family (OpenAI, Anthropic) decodes
 * into these, every upstream adapter (openai-compatible, anthropic, gemini) encodes from them, and the
 * gateway meters and charges on them. Upstream field names (prompt_tokens, ...) never leave wire/ and providers/.
 */

export type Role = 'system' | 'user' | 'assistant' | 'tool';

export type ContentPart =
  | { type: 'text'; text: string }
  /** url is an http(s) URL or a data: URL (base64). */
  | { type: 'image'; url: string; mediaType?: string }
  /** A tool call made by the assistant; argumentsJson is the raw JSON text of the arguments. */
  | { type: 'tool_call'; id: string; name: string; argumentsJson: string }
  /** The result of a tool call, sent back by the user/tool role. */
  | { type: 'tool_result'; toolCallId: string; content: string; isError?: boolean };

export interface ChatMessage {
  role: Role;
  content: ContentPart[];
  /** OpenAI `name` on a message, kept when present. */
  name?: string;
}

export interface ToolDefinition {
  name: string;
  description?: string;
  /** JSON Schema of the parameters. */
  parameters: Record<string, unknown>;
}

export type ToolChoice = 'auto' | 'none' | 'required' | { name: string };

export type ResponseFormat =
  | { type: 'text' }
  | { type: 'json_object' }
  | { type: 'json_schema'; name: string; schema: Record<string, unknown>; strict?: boolean };

export interface ChatRequest {
  /** The model id the client asked for (before catalog resolution). */
  model: string;
  /** System prompts are messages with role 'system' (Anthropic's top-level `system` decodes to one). */
  messages: ChatMessage[];
  stream: boolean;
  /** OpenAI `stream_options.include_usage`; the gateway always asks upstreams for usage regardless. */
  includeUsage: boolean;
  maxTokensOutput?: number;
  temperature?: number;
  topP?: number;
  topK?: number;
  stop?: string[];
  tools?: ToolDefinition[];
  toolChoice?: ToolChoice;
  parallelToolCalls?: boolean;
  responseFormat?: ResponseFormat;
  seed?: number;
  user?: string;
  /** Fields the inbound family defines that we do not model, passed through to a same-family upstream. */
  extra: Record<string, unknown>;
  /**
   * Set only by the Anthropic decoder: the body as the client sent it and the vendor headers that matter
   * (anthropic-beta, anthropic-version), so an Anthropic upstream receives what the canonical model cannot
   * hold (cache_control, thinking signatures, documents, server tools, mid-conversation system messages).
   * `requires` names what only an Anthropic upstream can serve (empty: any upstream will do).
   */
  anthropicNative?: { body: Record<string, unknown>; headers: Record<string, string>; requires: string[] };
}

export interface CompletionRequest {
  model: string;
  prompt: string | string[];
  stream: boolean;
  includeUsage: boolean;
  maxTokensOutput?: number;
  temperature?: number;
  topP?: number;
  stop?: string[];
  extra: Record<string, unknown>;
}

export interface EmbeddingRequest {
  model: string;
  input: string | string[] | number[] | number[][];
  encodingFormat?: 'float' | 'base64';
  dimensions?: number;
  user?: string;
  extra: Record<string, unknown>;
}

export interface Usage {
  tokensInput: number;
  tokensOutput: number;
  /** Input tokens served from the upstream's prompt cache (a subset of tokensInput). */
  tokensCachedInput: number;
  /** Input tokens written to the upstream's prompt cache (Anthropic cache_creation; a subset of tokensInput). */
  tokensCacheWrite: number;
  /** Reasoning tokens (a subset of tokensOutput). */
  tokensReasoning: number;
  /**
   * Server-tool requests an upstream ran and bills per request (Anthropic usage.server_tool_use
   * .web_search_requests). Counted and logged; not priced by the rate table yet. Absent when none.
   */
  serverToolRequests?: number;
}

export const zeroUsage = (): Usage => ({ tokensInput: 0, tokensOutput: 0, tokensCachedInput: 0, tokensCacheWrite: 0, tokensReasoning: 0 });

export type FinishReason = 'stop' | 'length' | 'tool_calls' | 'content_filter' | 'error';

export interface ChatResponse {
  id: string;
  /** The model name the upstream reported. */
  model: string;
  createdS: number;
  /** Assistant output: text parts and tool_call parts, in order. */
  content: ContentPart[];
  /** Reasoning text when the upstream exposes it (DeepSeek reasoning_content, Anthropic thinking). */
  reasoning?: string;
  /**
   * An Anthropic upstream's content blocks exactly as answered (thinking with signatures, redacted_thinking,
   * server tool blocks); an Anthropic client gets them verbatim, other encoders ignore them.
   */
  anthropicContent?: Record<string, unknown>[];
  finishReason: FinishReason;
  usage: Usage;
  /** True when the upstream reported no usage and it was counted by the gateway. */
  usageEstimated?: boolean;
}

export interface CompletionResponse {
  id: string;
  model: string;
  createdS: number;
  choices: { text: string; finishReason: FinishReason }[];
  usage: Usage;
}

export interface EmbeddingResponse {
  model: string;
  /** One vector per input, float arrays (base64 encoding happens in the codec if asked). */
  data: number[][];
  usage: Usage;
}

/** Canonical stream events, parsed once from the upstream and re-encoded once for the client. */
export type StreamEvent =
  /** `usage`: what the upstream reported up front (Anthropic message_start: the input and cache counts). */
  | { type: 'start'; id: string; model: string; createdS: number; usage?: Usage }
  | { type: 'text'; text: string }
  /**
   * Reasoning text. From an Anthropic upstream, text '' may carry the thinking block's `signature`, or
   * `block`: a whole content block the canonical model does not hold (redacted_thinking, server tool use and
   * results), which only an Anthropic encoder forwards; other encoders skip empty reasoning.
   */
  | { type: 'reasoning'; text: string; signature?: string; block?: Record<string, unknown> }
  /** A new tool call at position `index` among this response's tool calls. */
  | { type: 'tool_call_start'; index: number; id: string; name: string }
  | { type: 'tool_call_delta'; index: number; argumentsDelta: string }
  | { type: 'finish'; finishReason: FinishReason }
  /** Usage, normally once near the end; may arrive after 'finish'. */
  | { type: 'usage'; usage: Usage };

/** A model as listed by GET /v1/models. */
export interface ModelListing {
  id: string;
  ownedBy: string;
  createdS: number;
}

/** A saving feature of issue 17; `routing` is model: "auto" choosing a cheaper model than the caller's default. */
export type SavingKind = 'cache' | 'compression' | 'prompt_cache' | 'routing';

/**
 * What the gateway's stages did for one request (issue 17), stored on its usage record (SQLite: JSON column
 * `serving`). Every field is optional; a plain request has no note at all.
 */
export interface ServingNote {
  /** `model: "auto"`'s choice and reason: the `x-tokengrid-route` header's value. */
  route?: string;
  /** Exact response cache: `hit` (answered from the cache, no upstream call) or `stored` (this answer filled it). */
  cache?: 'hit' | 'stored';
  /** Input tokens context compression removed before the request was estimated and sent. */
  compressedTokens?: number;
  /** The deployment was chosen to keep a long shared prompt prefix on one deployment (its vendor cache). */
  stickyPrefix?: boolean;
  /** Vendor cost avoided, in micros of the major unit, per feature (integers). */
  savings?: Partial<Record<SavingKind, number>>;
  /** Security protection pack: hits per kind (phone, id, card, email, pattern, keyword, moderation, ...), input and output. */
  guardrailHits?: Record<string, number>;
}
