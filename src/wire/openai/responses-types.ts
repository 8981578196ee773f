import type { ChatRequest } from '../types.ts';

/**
 * POST /v1/responses (OpenAI's Responses API) decoded: a canonical ChatRequest for the gateway (so admission,
 * reservation, retries, metering and settlement are exactly those of chat) plus what the Responses envelope
 * needs to echo back, store and continue (`previous_response_id`).
 */
export interface ResponsesRequest {
  /** `messages` holds the instructions (a leading system message) and this request's input only. */
  chat: ChatRequest;
  /** This request's input, normalised to items (a string input becomes one user message item). */
  inputItems: Record<string, unknown>[];
  instructions: string | null;
  previousResponseId: string | null;
  /** Default true, as OpenAI's. */
  store: boolean;
  metadata: Record<string, string> | null;
  /** Tools of type `custom` (free-form input, e.g. Codex's apply_patch): sent upstream as function tools with one string parameter `input`. */
  customTools: ReadonlySet<string>;
  /** Tools flattened out of a `namespace` tool: function name → namespace. */
  namespaces: ReadonlyMap<string, string>;
  /** Hosted tool types no upstream of ours runs (web_search, tool_search, ...): left out, and said so in `x-tokengrid-warning`. */
  ignoredTools: string[];
  /** Request fields echoed on the response object as the client sent them. */
  echo: {
    tools: unknown[];
    toolChoice: unknown;
    text: Record<string, unknown>;
    reasoning: Record<string, unknown>;
    temperature: number | null;
    topP: number | null;
    maxOutputTokens: number | null;
    parallelToolCalls: boolean;
    promptCacheKey: string | null;
    user: string | null;
  };
}

/** A stored response: the object GET /v1/responses/{id} returns, and the conversation `previous_response_id` continues. */
export interface StoredResponse {
  id: string;
  accountId: string;
  createdAtMs: number;
  expiresAtMs: number;
  /** The Response object as it was sent to the client. */
  response: Record<string, unknown>;
  /** Every item of the conversation so far: the previous responses', this request's input, and this response's output. */
  items: Record<string, unknown>[];
}

/** Where responses are kept (implemented in store/sqlite and store/memory; used by api/openai/responses.ts). */
export interface ResponseStore {
  put(r: StoredResponse): Promise<void>;
  /** The response if it belongs to this account and has not expired. */
  get(accountId: string, id: string, nowMs: number): Promise<StoredResponse | undefined>;
  /** True when a response of this account was deleted. */
  delete(accountId: string, id: string): Promise<boolean>;
  /** Remove expired responses; returns how many. */
  sweep(nowMs: number): Promise<number>;
}
