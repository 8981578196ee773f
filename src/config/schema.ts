import { z } from 'zod';

const ratio = z.union([z.number().int().nonnegative(), z.string().regex(/^\d+\/[1-9]\d*$/, 'a ratio like "1/4"')]);

export const providerSchema = z
  .object({
    adapter: z.enum(['openai-compatible', 'anthropic', 'gemini', 'mock']),
    dialect: z.enum(['openai-compatible', 'anthropic', 'gemini']).optional(),
    baseUrl: z.string().url().optional(),
    apiKeyEnv: z.string().optional(),
    apiKey: z.string().optional(),
    headers: z.record(z.string(), z.string()).optional(),
    label: z.string().optional(),
  })
  .strict();

export const deploymentSchema = z
  .object({
    provider: z.string(),
    upstreamModel: z.string().optional(),
    region: z.string().default('default'),
    weight: z.number().nonnegative().default(1),
  })
  .strict();

export const modelSchema = z
  .object({
    kind: z.enum(['chat', 'embedding']).default('chat'),
    vendor: z.string(),
    displayName: z.string().optional(),
    aliases: z.array(z.string()).default([]),
    groups: z.array(z.string()).default([]),
    contextWindow: z.number().int().positive(),
    maxOutputTokens: z.number().int().nonnegative(),
    capabilities: z.array(z.enum(['tools', 'vision', 'reasoning', 'json', 'completions'])).default([]),
    deployments: z.array(deploymentSchema).default([]),
    fallback: z.array(z.string()).default([]),
    attemptsMax: z.number().int().min(1).max(10).default(3),
    cost: z
      .object({
        currency: z.string().default('CNY'),
        input: z.number().int().nonnegative(),
        output: z.number().int().nonnegative(),
        cachedInput: z.number().int().nonnegative().optional(),
      })
      .strict(),
    coins: z.object({ input: ratio, output: ratio, cachedInput: ratio.optional(), cacheWrite: ratio.optional(), reasoning: ratio.optional() }).strict(),
    requestsPerCall: z.number().int().positive().default(1),
    /** Quality tier for `model: "auto"` (1 = basic .. 3 = best); a model without a tier is never chosen by auto. */
    tier: z.number().int().min(1).max(3).optional(),
  })
  .strict();

export const serverSchema = z
  .object({
    host: z.string().default('127.0.0.1'),
    port: z.number().int().min(0).max(65535).default(8080),
    bodyLimitBytes: z
      .number()
      .int()
      .positive()
      .default(10 * 1024 * 1024),
    timeoutMsUpstreamHeaders: z.number().int().positive().default(30_000),
    timeoutMsUpstreamBody: z.number().int().positive().default(120_000),
    shutdownGraceMs: z.number().int().nonnegative().default(15_000),
    /** Keep-alive connections per upstream origin (streams in flight to one origin beyond this queue). */
    upstreamConnectionsMax: z.number().int().positive().default(4096),
    /** The fast paths of ARCHITECTURE.md's table; false (or env TOKENGRID_FAST_PATHS=off) takes every general twin. */
    fastPaths: z.boolean().default(true),
  })
  .strict();

const regexString = z
  .string()
  .min(1)
  .max(1000)
  .refine(
    (p) => {
      try {
        new RegExp(p, 'u');
        return true;
      } catch {
        return false;
      }
    },
    { message: 'expected a valid regular expression (JavaScript syntax, unicode mode)' },
  );

/** The security protection pack's operator rules (issue 17 item 7): applied to accounts with feature security_pack. */
export const guardrailsSchema = z
  .object({
    /** Case-insensitive substrings: an input containing one is refused (content_blocked), before any upstream call. */
    blockKeywords: z.array(z.string().min(1).max(200)).default([]),
    /** Regexes: an input matching one is refused (content_blocked). */
    blockPatterns: z.array(regexString).default([]),
    /** Regexes: matches in input and output are replaced with [REDACTED] (besides the built-in personal data kinds). */
    redactPatterns: z.array(regexString).default([]),
    /** An external moderation service (POST {"input": text}; OpenAI's moderation answer shape or {flagged, categories}); none by default. */
    moderationUrl: z.string().url().optional(),
  })
  .strict();

/** Where the data lives (issue 15): PostgreSQL and Redis for many nodes; both unset: SQLite in the data folder. */
export const storageSchema = z
  .object({
    /** postgres://user:password@host:port/database: every store on PostgreSQL (TOKENGRID_DATABASE_URL wins). */
    databaseUrl: z
      .string()
      .regex(/^postgres(ql)?:\/\/\S+$/, 'a postgres:// or postgresql:// URL')
      .optional(),
    /** redis://host:port[/db]: shared limits and the change feed (TOKENGRID_REDIS_URL wins). */
    redisUrl: z
      .string()
      .regex(/^rediss?:\/\/\S+$/, 'a redis:// or rediss:// URL')
      .optional(),
  })
  .strict();

/** The exact response cache (issue 17 item 4; docs/configuration.md). */
export const responseCacheSchema = z
  .object({
    /** Off: no lookups, nothing stored (env TOKENGRID_RESPONSE_CACHE=on|off wins). */
    enabled: z.boolean().default(true),
    /** How long an answer is served from the cache. */
    ttlMs: z.number().int().positive().default(600_000),
    /** The in-process cache's size bound (least recently used first); Redis bounds its own memory. */
    maxBytes: z
      .number()
      .int()
      .positive()
      .default(64 * 1024 * 1024),
    /** A hit is charged this fraction of the normal rated cost of the answer it replays (0..1, 4 decimals). */
    chargeRatio: z.number().min(0).max(1).default(0.1),
  })
  .strict();

/** Prompt-prefix stickiness (issue 17 item 5). */
export const stickyPrefixSchema = z
  .object({
    /** Off: deployments in weighted order (env TOKENGRID_STICKY_PREFIX=on|off wins). */
    enabled: z.boolean().default(true),
    /** A request whose prompt prefix reaches this many estimated tokens sticks to one deployment per prefix. */
    minTokens: z.number().int().positive().default(1024),
  })
  .strict();

export const configSchema = z
  .object({
    server: serverSchema.default(serverSchema.parse({})),
    providers: z.record(z.string(), providerSchema),
    models: z.record(z.string(), modelSchema),
    /** Charging settings of the file (the engine's own tuning is ChargingConfig, set by code). */
    charging: z
      .object({ walletCoinsPerYuan: z.number().int().positive().default(400_000) })
      .strict()
      .default({ walletCoinsPerYuan: 400_000 }),
    catalog: z.object({ offersFile: z.string().optional() }).strict().optional(),
    notifications: z.object({ webhookUrl: z.string().url().optional() }).strict().optional(),
    guardrails: guardrailsSchema.optional(),
    storage: storageSchema.optional(),
    responseCache: responseCacheSchema.default(responseCacheSchema.parse({})),
    stickyPrefix: stickyPrefixSchema.default(stickyPrefixSchema.parse({})),
  })
  .strict();

export type FileConfig = z.infer<typeof configSchema>;
export type FileProvider = z.infer<typeof providerSchema>;
export type FileModel = z.infer<typeof modelSchema>;

/** Readable zod issues: `models.glm-5.coins.input: a ratio like "1/4"`. */
export function formatIssues(error: z.ZodError): string {
  return error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
}
