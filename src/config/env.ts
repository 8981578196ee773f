/**
 * The server's environment, parsed and defaulted in one place (zod), so the composition root reads typed
 * settings and never `process.env`. docs/configuration.md documents every variable below (test/config-doc.test.ts
 * checks both ways). An empty variable counts as unset. Vendor API keys are not here: each provider names its own
 * variable in config/tokengrid.yaml (`apiKeyEnv`), read by `resolveConfig`.
 */
import { z } from 'zod';
import { ConfigError } from './load.ts';
import { formatIssues } from './schema.ts';

/** The shortest TOKENGRID_ADMIN_KEY accepted (the generated keys have 32 random base64url characters). */
export const ADMIN_KEY_MIN_LENGTH = 32;
/** The shortest webhook signing secret accepted (equals notifications' WEBHOOK_SECRET_MIN_LENGTH; a test checks). */
export const ENV_WEBHOOK_SECRET_MIN_LENGTH = 16;
/** Failed authentications one address may make per minute before it gets 429 (TOKENGRID_AUTH_FAILURES_PER_MINUTE). */
export const DEFAULT_AUTH_FAILURES_PER_MINUTE = 20;

/** Unset, empty or blank: undefined; otherwise the trimmed text. */
const text = z.preprocess((v) => (typeof v === 'string' && v.trim() !== '' ? v.trim() : undefined), z.string().optional());
/** Like `text` but keeps the value as given (a path or host may be meant with its spaces; only blank means unset). */
const raw = z.preprocess((v) => (typeof v === 'string' && v.trim() !== '' ? v : undefined), z.string().optional());

/** A trimmed secret of at least `min` characters; `advice` ends the message when it is shorter. */
const secret = (name: string, min: number, advice: string) =>
  text.superRefine((v, ctx) => {
    if (v !== undefined && v.length < min) {
      ctx.addIssue({ code: 'custom', message: `${name} is too short (${v.length} characters): use at least ${min} random characters${advice}` });
    }
  });

export const envSchema = z.object({
  TOKENGRID_CONFIG: raw,
  TOKENGRID_HOST: raw,
  TOKENGRID_PORT: text.pipe(
    z
      .string()
      .regex(/^\d+$/, 'an integer 0..65535')
      .transform(Number)
      .refine((n) => n <= 65535, 'an integer 0..65535')
      .optional(),
  ),
  TOKENGRID_DATA_DIR: raw,
  TOKENGRID_LOG_LEVEL: text.pipe(z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).optional()),
  TOKENGRID_ADMIN_KEY: secret(
    'TOKENGRID_ADMIN_KEY',
    ADMIN_KEY_MIN_LENGTH,
    ' (e.g. `openssl rand -base64 32`), or unset it and use the key file data/admin-key.',
  ),
  TOKENGRID_METRICS_TOKEN: raw,
  TOKENGRID_OFFERS_FILE: raw,
  TOKENGRID_WEBHOOK_URL: raw,
  TOKENGRID_WEBHOOK_SECRET: secret('TOKENGRID_WEBHOOK_SECRET', ENV_WEBHOOK_SECRET_MIN_LENGTH, '.'),
  TOKENGRID_CARRIER_WEBHOOK_URL: raw,
  TOKENGRID_CARRIER_WEBHOOK_SECRET: secret('TOKENGRID_CARRIER_WEBHOOK_SECRET', ENV_WEBHOOK_SECRET_MIN_LENGTH, '.'),
  TOKENGRID_CARRIER_EXPORT_DIR: raw,
  // Lenient, as before: anything but a positive integer means the default.
  TOKENGRID_AUTH_FAILURES_PER_MINUTE: z.preprocess((v) => {
    const n = Number(v ?? DEFAULT_AUTH_FAILURES_PER_MINUTE);
    return Number.isInteger(n) && n > 0 ? n : DEFAULT_AUTH_FAILURES_PER_MINUTE;
  }, z.number().int().positive()),
  // Lenient, as before: anything but a positive number means the built-in retention.
  // on (default) or off: off takes every fast path's general twin (ARCHITECTURE.md "Fast paths"); resolveConfig applies it.
  TOKENGRID_FAST_PATHS: z.preprocess(
    (v) => (typeof v === 'string' && v.trim() !== '' ? v.trim().toLowerCase() : undefined),
    z.enum(['on', 'off'], { message: 'TOKENGRID_FAST_PATHS must be on or off' }).optional(),
  ),
  // on|off: the exact response cache and prompt-prefix stickiness (issue 17 items 4, 5); unset: the config file's.
  TOKENGRID_RESPONSE_CACHE: onOff('TOKENGRID_RESPONSE_CACHE'),
  TOKENGRID_STICKY_PREFIX: onOff('TOKENGRID_STICKY_PREFIX'),
  TOKENGRID_RESPONSE_TTL_DAYS: z.preprocess((v) => (Number(v) > 0 ? Number(v) : undefined), z.number().positive().optional()),
  // PostgreSQL (issue 15 item 1): every store on this database instead of the data folder's SQLite file.
  TOKENGRID_DATABASE_URL: text.pipe(
    z
      .string()
      .regex(/^postgres(ql)?:\/\/\S+$/, 'TOKENGRID_DATABASE_URL must be a postgres:// or postgresql:// URL')
      .optional(),
  ),
  // Redis (issue 15 item 2): rate/concurrency limits shared by the nodes, the change feed and the response cache's
  // answers (issue 17 item 4); unset: per-node limits and caches.
  TOKENGRID_REDIS_URL: text.pipe(
    z
      .string()
      .regex(/^rediss?:\/\/\S+$/, 'TOKENGRID_REDIS_URL must be a redis:// or rediss:// URL')
      .optional(),
  ),
  TOKENGRID_REDIS_PREFIX: text.pipe(
    z
      .string()
      .regex(/^[A-Za-z0-9_.:-]{1,64}$/, 'TOKENGRID_REDIS_PREFIX must be 1 to 64 letters, digits or _ . : -')
      .optional(),
  ),
});

function onOff(name: string) {
  return z.preprocess(
    (v) => (typeof v === 'string' && v.trim() !== '' ? v.trim().toLowerCase() : undefined),
    z.enum(['on', 'off'], { message: `${name} must be on or off` }).optional(),
  );
}

/** The server's settings from the environment, typed and defaulted. */
export interface EnvSettings {
  configPath: string | undefined;
  host: string | undefined;
  port: number | undefined;
  dataDir: string | undefined;
  logLevel: string;
  /** An extra operator key besides data/admin-key (trimmed, at least ADMIN_KEY_MIN_LENGTH characters). */
  adminKey: string | undefined;
  metricsToken: string | undefined;
  offersFile: string | undefined;
  webhookUrl: string | undefined;
  webhookSecret: string | undefined;
  carrierWebhookUrl: string | undefined;
  carrierWebhookSecret: string | undefined;
  carrierExportDir: string | undefined;
  authFailuresPerMinute: number;
  /** Retention of stored Responses in ms; undefined: the built-in default. */
  responseTtlMs: number | undefined;
  /** TOKENGRID_FAST_PATHS: false takes every general twin; undefined: config's server.fastPaths. */
  fastPaths: boolean | undefined;
  /** TOKENGRID_DATABASE_URL: the stores on this PostgreSQL database; undefined: SQLite in the data folder. */
  databaseUrl: string | undefined;
  /** TOKENGRID_REDIS_URL: shared limits and the change feed on this Redis; undefined: per-node limits. */
  redisUrl: string | undefined;
  /** TOKENGRID_REDIS_PREFIX: the prefix of every Redis key and channel (default `tg:`). */
  redisPrefix: string | undefined;
  /** TOKENGRID_RESPONSE_CACHE: undefined: config's responseCache.enabled. */
  responseCache: boolean | undefined;
  /** TOKENGRID_STICKY_PREFIX: undefined: config's stickyPrefix.enabled. */
  stickyPrefix: boolean | undefined;
}

/** Parses the TOKENGRID_* variables of `env`; a bad value is a ConfigError naming the variable. */
export function parseEnv(env: Readonly<Record<string, string | undefined>> = process.env): EnvSettings {
  const picked: Record<string, string | undefined> = {};
  for (const key of Object.keys(envSchema.shape)) picked[key] = env[key];
  const r = envSchema.safeParse(picked);
  if (!r.success) {
    // The refinements' messages already name the variable; the others get it as their path.
    throw new ConfigError(r.error.issues.map((i) => (i.message.startsWith('TOKENGRID_') ? i.message : formatIssues(new z.ZodError([i])))).join('; '));
  }
  const e = r.data;
  return {
    configPath: e.TOKENGRID_CONFIG,
    host: e.TOKENGRID_HOST,
    port: e.TOKENGRID_PORT,
    dataDir: e.TOKENGRID_DATA_DIR,
    logLevel: e.TOKENGRID_LOG_LEVEL ?? 'info',
    adminKey: e.TOKENGRID_ADMIN_KEY,
    metricsToken: e.TOKENGRID_METRICS_TOKEN,
    offersFile: e.TOKENGRID_OFFERS_FILE,
    webhookUrl: e.TOKENGRID_WEBHOOK_URL,
    webhookSecret: e.TOKENGRID_WEBHOOK_SECRET,
    carrierWebhookUrl: e.TOKENGRID_CARRIER_WEBHOOK_URL,
    carrierWebhookSecret: e.TOKENGRID_CARRIER_WEBHOOK_SECRET,
    carrierExportDir: e.TOKENGRID_CARRIER_EXPORT_DIR,
    authFailuresPerMinute: e.TOKENGRID_AUTH_FAILURES_PER_MINUTE,
    fastPaths: e.TOKENGRID_FAST_PATHS === undefined ? undefined : e.TOKENGRID_FAST_PATHS === 'on',
    responseCache: e.TOKENGRID_RESPONSE_CACHE === undefined ? undefined : e.TOKENGRID_RESPONSE_CACHE === 'on',
    stickyPrefix: e.TOKENGRID_STICKY_PREFIX === undefined ? undefined : e.TOKENGRID_STICKY_PREFIX === 'on',
    responseTtlMs: e.TOKENGRID_RESPONSE_TTL_DAYS === undefined ? undefined : Math.round(e.TOKENGRID_RESPONSE_TTL_DAYS * 86_400_000),
    databaseUrl: e.TOKENGRID_DATABASE_URL,
    redisUrl: e.TOKENGRID_REDIS_URL,
    redisPrefix: e.TOKENGRID_REDIS_PREFIX,
  };
}

/** The variables the `tokengrid` CLI reads (it is a client of the admin API, not the server; see src/cli/connection.ts). */
export const CLI_ENV_VARIABLES = [
  'TOKENGRID_URL',
  'TOKENGRID_HOST',
  'TOKENGRID_PORT',
  'TOKENGRID_ADMIN_KEY',
  'TOKENGRID_DATA_DIR',
  'TOKENGRID_DEBUG',
  'TOKENGRID_CLI_FROM_SOURCE',
];
