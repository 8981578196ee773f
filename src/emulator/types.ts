/** Public and shared types of the upstream emulator. */

export interface EmulatorOptions {
  /** Delay before the first content chunk (and part of the delay of a non-stream answer). */
  ttftMs?: number;
  /** Delay between two content chunks. */
  chunkIntervalMs?: number;
  /** Output tokens carried by one content chunk. */
  tokensPerChunk?: number;
  /** Default length of an answer in output tokens (before any max_tokens cap). */
  outputTokens?: number;
  /** Lifecycle and bad-input messages; never called per successful request (hot path). */
  logger?: (msg: string) => void;
}

export interface EmulatorStats {
  requests: number;
  byPath: Record<string, number>;
  byModel: Record<string, number>;
  aborted: number;
}

export interface Emulator {
  /** http://127.0.0.1:PORT */
  url: string;
  port: number;
  stats(): EmulatorStats;
  /** The last request received on `path` (e.g. /v1/messages): its headers and parsed JSON body, for tests. */
  lastRequest(path: string): CapturedRequest | undefined;
  resetStats(): void;
  setDefaults(o: Partial<EmulatorOptions>): void;
  close(): Promise<void>;
}

export interface CapturedRequest {
  headers: Record<string, string | string[] | undefined>;
  body: Record<string, unknown>;
}

/** Defaults after merging; numbers only, so the hot path never checks for undefined. */
export interface Pacing {
  ttftMs: number;
  chunkIntervalMs: number;
  tokensPerChunk: number;
  outputTokens: number;
}

export const DEFAULT_PACING: Pacing = Object.freeze({
  ttftMs: 0,
  chunkIntervalMs: 0,
  tokensPerChunk: 1,
  outputTokens: 24,
});

/** Per-request behaviour injected via `x-emulator` header or `model@k=v` suffixes. */
export interface Directives {
  fail?: number;
  failRate?: number;
  hang?: boolean;
  hangMs?: number;
  disconnectAfter?: number;
  malformedAfter?: number;
  errorAfter?: number;
  noUsage?: boolean;
  ignoreMaxTokens?: boolean;
  tokens?: number;
  ttft?: number;
  interval?: number;
  chunk?: number;
  cached?: number;
  reasoning?: number;
  promptTokens?: number;
  /** Count input tokens as UTF-8 bytes (+4 per message): a byte-level tokenizer that knows no CJK merges. */
  inputBytes?: boolean;
  /** The tool an agent counterpart calls when tools are offered (by name; see agent.ts). */
  tool?: string;
  /** `all`: tool arguments fill every property of the schema, not only the `required` ones (agent.ts). */
  toolArgs?: string;
  /** Anthropic: input tokens reported as written to the prompt cache (cache_creation_input_tokens). */
  cacheWrite?: number;
  /** OpenAI chat: answer with the last user message's text (guardrail tests: what the upstream received comes back). */
  echo?: boolean;
  /** With echo: the text reversed (a value the upstream writes that the input did not hold, for output guardrail tests). */
  reverse?: boolean;
  /** Answer `[recall NAME]` markers of the last user turn with NAME's value from the context (agent.ts). */
  recall?: boolean;
}

/** Stream fault points, counted in content chunks; undefined when not injected. */
export interface Faults {
  disconnectAfter: number | undefined;
  malformedAfter: number | undefined;
  errorAfter: number | undefined;
}

/** What one request resolved to: pacing after directives, faults, usage switches. */
export interface RequestSettings {
  ttftMs: number;
  chunkIntervalMs: number;
  tokensPerChunk: number;
  faults: Faults;
  hasFaults: boolean;
  noUsage: boolean;
}
