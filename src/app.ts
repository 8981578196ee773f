/**
 * The composition root: builds stores, clock, ids, the undici Agent, adapters, engines and the HTTP shell,
 * and wires them. No logic lives here; nothing else constructs an implementation.
 */
import { appendFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Agent } from 'undici';
import { Counter, Gauge } from 'prom-client';
import {
  createIdGenerator,
  mulDiv,
  cryptoRandom,
  systemClock,
  FanoutChangeFeed,
  MemoryChangeFeed,
  type ChangeFeed,
  type ChangeTopic,
  type Clock,
  type Random,
} from './core/index.ts';
import type { AccountDeps, KeyLimits } from './accounts/index.ts';
import type { ModelCatalog, ModelMap } from './catalog/index.ts';
import { createBillingService, fileExportChannel, webhookChannel } from './billing/index.ts';
import {
  createChargingEngine,
  defaultChargingConfig,
  type ChargingConfig,
  type ChargingService,
  type ChargingStore,
  type RateTable,
} from './charging/index.ts';
import { loadConfigFile, parseEnv, resolveConfig, resolveOffersFile, DEFAULT_CONFIG_PATH, type RuntimeConfig } from './config/index.ts';
import { startEmulator, type Emulator } from './emulator/index.ts';
import { Gateway, KeySnapshot, RateLimiter, defaultStreamOptions, type AccountRouting, type StreamOptions } from './gateway/index.ts';
import { DeploymentHealth, LatencyTracker } from './routing/index.ts';
import { createAnthropicAdapter } from './providers/anthropic/index.ts';
import { createGeminiAdapter } from './providers/gemini/index.ts';
import { createOpenAICompatibleAdapter } from './providers/openai-compatible/index.ts';
import type { ProviderConfig } from './providers/index.ts';
import { estimateTextTokens } from './wire/index.ts';
import type { SqliteDb } from './store/sqlite/db.ts';
import { openEngines } from './app/engines.ts';
import { DEFAULT_RESPONSE_TTL_MS } from './api/openai/responses.ts';
import { createWebhookDeliverer, type WebhookDeliverer } from './notifications/index.ts';
import { createLogger, createTelemetry, type Logger, type Telemetry } from './telemetry/index.ts';
import { createHttpShell, type HttpShell } from './api/server.ts';
import { openaiRoutes } from './api/openai/routes.ts';
import { anthropicRoutes } from './api/anthropic/routes.ts';
import { opsRoutes } from './api/ops/routes.ts';
import { accountAdminRoutes } from './api/admin/accounts.ts';
import { chargingAdminRoutes } from './api/admin/charging.ts';
import { billingAdminRoutes } from './api/admin/billing.ts';
import { selfRoutes } from './api/self/routes.ts';
import { consoleRoutes, type PhoneBook, type SmsSender } from './api/console/routes.ts';
import { audited } from './api/self/audit.ts';
import { deliverSmsAlerts, notificationRoutes, type NotificationSettings, type SettingsBook } from './api/console/notifications.ts';
import type { AdminIdentity, ShellDeps } from './api/shell-deps.ts';
import type { Route } from './api/router.ts';
import { guardAdminRoutes } from './api/admin/permissions.ts';
import { auditAuthFailure, auditWriteHook, securityAdminRoutes } from './api/admin/audit.ts';
import { requireAccountAccess } from './api/admin/common.ts';
import { AuthThrottle } from './api/auth-throttle.ts';
import { AuditLog } from './audit/index.ts';
import { openRootAdminKeys } from './app/admin-keys.ts';
import { bootstrapDemoAccount } from './app/bootstrap.ts';
import { openOffersFile } from './app/offers-file.ts';
import { openRedisServices } from './app/redis.ts';
import { signingSecret } from './app/signing-secrets.ts';
import { createCompressStage } from './app/compress-stage.ts';
import type { CompressOptions } from './compress/index.ts';
import { createGuardrailStage, httpModerationPort } from './app/guardrail-stage.ts';
import { createQosScheduler, createQosStage, hasQosLimits, qosClassOf } from './app/qos-stage.ts';
import { withRegionPins } from './app/residency.ts';
import { compileRules, type ModerationPort } from './guardrails/index.ts';
import { Redis } from 'ioredis';
import { createCacheStage } from './app/cache-stage.ts';
import { MemoryResponseCache, type ResponseCachePort } from './cache/index.ts';
import { normalizePrefix } from './store/redis/connect.ts';
import { RedisResponseCache } from './store/redis/response-cache.ts';

export interface AppOptions {
  configPath?: string;
  dataDir?: string;
  host?: string;
  port?: number;
  /** The environment (default: the process's); parsed by src/config (docs/configuration.md). */
  env?: NodeJS.ProcessEnv;
  clock?: Clock;
  random?: Random;
  logger?: Logger;
  /** Use an already running emulator for mock providers instead of starting one in-process. */
  emulatorUrl?: string;
  /** Seed a demo account and key on first start (default true). */
  bootstrapDemo?: boolean;
  charging?: Partial<ChargingConfig>;
  stream?: Partial<StreamOptions>;
  /** Timers for sweeping expired reservations and renewing cycles (default true). */
  timers?: boolean;
  /** How often the sweeper expires abandoned reservations (default 15 s). */
  sweepIntervalMs?: number;
  /** The security pack's external moderation service (default none): a flagged input is refused with content_blocked. */
  moderation?: ModerationPort;
  /**
   * How changes reach the other nodes when Redis is not configured (e.g. PostgreSQL LISTEN/NOTIFY); with
   * TOKENGRID_REDIS_URL the Redis pub/sub feed is used; with neither, an in-process one (one node).
   */
  changeFeed?: ChangeFeed;
  /** A prefix for every Redis key this app writes (tests sharing one Redis); default none. */
  redisKeyPrefix?: string;
  /** Context compression's tuning (default `DEFAULT_COMPRESS_OPTIONS`; the cost benchmark turns the guard off to show what it keeps). */
  compression?: Partial<CompressOptions>;
}

export { ADMIN_KEY_MIN_LENGTH } from './config/index.ts';

export interface FirstStart {
  adminKey: string;
  demoKey: string;
  demoAccountId: string;
}

export interface App {
  config: RuntimeConfig;
  /** The SQLite database (SQLite engine only; undefined on PostgreSQL). */
  db: SqliteDb | undefined;
  clock: Clock;
  accounts: AccountDeps;
  charging: ChargingService;
  chargingStore: ChargingStore;
  gateway: Gateway;
  shell: HttpShell;
  telemetry: Telemetry;
  logger: Logger;
  emulator: Emulator | undefined;
  /** Set when this start created the data folder's admin key and demo key (printed once). */
  firstStart: FirstStart | undefined;
  adminKeyPath: string;
  /** data/demo-key (mode 0600): the demo API key, written on first start so it can be shown again. */
  demoKeyPath: string;
  audit: AuditLog;
  listen(): Promise<{ url: string; port: number }>;
  /** Stop taking requests, let in-flight streams finish (up to graceMs), close everything. */
  close(graceMs?: number): Promise<void>;
  refreshKeys(): Promise<void>;
  /** Re-read each account's plan limits (also done every 10 s). */
  refreshPlanLimits(): Promise<void>;
}

/** Rate table from the catalog: coins per token by model, wallet money price derived from the coin price. */
export function rateTableFromCatalog(catalog: ModelCatalog, coinsPerYuan: number): RateTable {
  const models: RateTable['models'] = {};
  // price of 1M coins in micro-CNY: 1e6 coins / coinsPerYuan yuan = 1e12 / coinsPerYuan micros
  const microsPerMillionCoins = Math.round(1e12 / coinsPerYuan);
  const price = (r: { num: number; den: number }): number => mulDiv(microsPerMillionCoins, r.num, r.den, 'ceil');
  for (const m of catalog.models.values()) {
    models[m.id] = {
      coinsPerTokenInput: m.coins.input,
      coinsPerTokenOutput: m.coins.output,
      coinsPerTokenCachedInput: m.coins.cachedInput,
      coinsPerTokenReasoning: m.coins.reasoning,
      ...(m.coins.cacheWrite !== undefined ? { coinsPerTokenCacheWrite: m.coins.cacheWrite } : {}),
      priceMicrosPerMillionInput: price(m.coins.input),
      priceMicrosPerMillionOutput: price(m.coins.output),
      priceMicrosPerMillionCachedInput: price(m.coins.cachedInput),
      perRequestCharge: m.requestsPerCall,
      modelGroups: m.groups,
    };
  }
  return { version: `${catalog.version}-cpy${coinsPerYuan}`, currency: 'CNY', minorUnitsPerMajor: 100, models };
}

export async function createApp(opts: AppOptions = {}): Promise<App> {
  // Every setting, environment included, is parsed and defaulted by src/config (docs/configuration.md): a weak
  // secret or a bad value is refused before anything is opened or locked.
  const settings = parseEnv(opts.env);
  const logger = opts.logger ?? createLogger(settings.logLevel);
  const configPath = opts.configPath ?? settings.configPath ?? DEFAULT_CONFIG_PATH;
  const config = resolveConfig(loadConfigFile(configPath), opts.env, {
    host: opts.host ?? settings.host,
    port: opts.port ?? settings.port,
    dataDir: opts.dataDir ?? settings.dataDir,
  });
  const clock = opts.clock ?? systemClock;
  const random = opts.random ?? cryptoRandom;
  const ids = createIdGenerator(clock, random);
  // Many nodes (issue 15): this process's id, the origin of the changes it announces.
  const nodeId = `node_${random.bytes(6).toString('hex')}`;
  // SQLite in the data folder, or PostgreSQL when a database URL is set (src/app/engines.ts).
  const engines = await openEngines({
    databaseUrl: settings.databaseUrl ?? config.file.storage?.databaseUrl,
    dataDir: config.dataDir,
    clock,
    nodeId,
    log: (level, obj, msg) => logger[level](obj, msg),
  });
  const accountStore = engines.accounts;
  const chargingStore = engines.charging;

  let emulator: Emulator | undefined;
  let emulatorBase = opts.emulatorUrl;
  if (!emulatorBase && [...config.providers.values()].some((p) => p.isMock)) {
    emulator = await startEmulator({ host: '127.0.0.1', port: 0 });
    emulatorBase = emulator.url;
  }
  // Mock providers point at the emulator: a new map, the resolved config is not patched.
  const providers: ReadonlyMap<string, ProviderConfig> = new Map(
    [...config.providers].map(([name, p]) => [
      name,
      p.isMock ? { ...p, baseUrl: p.adapter === 'openai-compatible' ? `${emulatorBase}/v1` : `${emulatorBase}`, apiKey: 'tokengrid-emulator' } : p,
    ]),
  );

  const coinsPerYuan = config.file.charging.walletCoinsPerYuan;
  const rates = rateTableFromCatalog(config.catalog, coinsPerYuan);
  const charging = createChargingEngine({ store: chargingStore, clock, ids, rates: () => rates, config: { ...defaultChargingConfig, ...opts.charging } });

  const keys = new KeySnapshot();
  // Plan-level rate limits per account, from the billing entitlements (refreshed on a timer and with the keys).
  let planLimits = new Map<string, KeyLimits>();
  // Package model mappings per account (the plan offer's modelMap), refreshed with the plan limits.
  let planModelMaps = new Map<string, ModelMap>();
  // What each account's allowance still pays for (models of its buckets with something left), for model: "auto".
  let planModels = new Map<string, readonly string[]>();
  // Features switched on by each account's live add-ons (security_pack enables the guardrail stage).
  let planFeatures = new Map<string, ReadonlySet<string>>();
  // QoS class (the package's qos) and residency pin (the package's regions) per account, for the QoS stage and routing.
  let planRouting = new Map<string, AccountRouting>();
  const refreshKeys = async (): Promise<void> => {
    const [all, accountsList] = await Promise.all([accountStore.listKeys(), accountStore.listAccounts()]);
    keys.replace(
      all,
      accountsList.filter((a) => a.status === 'active').map((a) => a.id),
      planLimits,
      planModelMaps,
      planModels,
      planFeatures,
      withRegionPins(planRouting, accountsList),
    );
  };
  const refreshPlanLimits = async (): Promise<void> => {
    const next = new Map<string, KeyLimits>();
    const nextMaps = new Map<string, ModelMap>();
    const nextModels = new Map<string, readonly string[]>();
    const nextFeatures = new Map<string, ReadonlySet<string>>();
    const nextRouting = new Map<string, AccountRouting>();
    // Runs once billing (below) is built: at its first call and on its timer.
    for (const accountId of new Set((await accountStore.listKeys()).map((k) => k.accountId))) {
      const e = await billing.entitlements(accountId);
      if (Object.keys(e.rateLimits).length > 0) next.set(accountId, e.rateLimits);
      const map = e.plan === null ? undefined : offers.holder.current.offers.get(e.plan.offerId)?.modelMap;
      if (map !== undefined) nextMaps.set(accountId, map);
      if (e.features.length > 0) nextFeatures.set(accountId, new Set(e.features.map((x) => x.feature)));
      const cls = qosClassOf(e.qos);
      if (cls !== 'standard' || e.regions !== null)
        nextRouting.set(accountId, { ...(cls === 'standard' ? {} : { qos: cls }), ...(e.regions === null ? {} : { regions: e.regions }) });
      // model: "auto" prefers what the allowance still pays for: the models of the account-wide buckets with
      // something left (wallet and postpaid lines excluded; a bucket for all models covers everything).
      const nowMs = clock.nowMs();
      const left = (await charging.listBuckets(accountId)).filter(
        (b) =>
          b.kind !== 'wallet' &&
          b.kind !== 'postpaid_line' &&
          b.memberId === null &&
          !b.expired &&
          b.remaining > 0 &&
          b.effectiveAtMs <= nowMs &&
          (b.expiresAtMs === null || b.expiresAtMs > nowMs),
      );
      if (!left.some((b) => b.models === null)) nextModels.set(accountId, [...new Set(left.flatMap((b) => b.models ?? []))]);
    }
    planLimits = next;
    planModelMaps = nextMaps;
    planModels = nextModels;
    planFeatures = nextFeatures;
    planRouting = nextRouting;
    await refreshKeys();
  };
  // Many nodes (issue 15 item 2): limits shared on Redis when TOKENGRID_REDIS_URL is set, and a change feed so a key
  // revoked or a plan changed on one node is applied by every node within a second (ARCHITECTURE.md "Many nodes").
  const redisUrl = settings.redisUrl ?? config.file.storage?.redisUrl;
  const redis =
    redisUrl === undefined
      ? undefined
      : await openRedisServices({
          url: redisUrl,
          prefix: settings.redisPrefix,
          nodeId,
          clock,
          onFallback: (err) => {
            redisFallbacks.inc();
            logger.warn({ err }, 'Redis failed: rate limits fall back to this node for a moment');
          },
          log: (level, obj, msg) => logger[level](obj, msg),
        });
  // With Redis and PostgreSQL both, changes travel on both: a node that started while Redis was unreachable (it
  // listens on PostgreSQL only) still hears the others, and a change still travels while one of them is down.
  const changeFeed: ChangeFeed =
    redis?.shared === true
      ? engines.changeFeed === undefined
        ? redis.changeFeed
        : new FanoutChangeFeed([redis.changeFeed, engines.changeFeed])
      : (opts.changeFeed ?? engines.changeFeed ?? new MemoryChangeFeed(nodeId));
  const announce = (topic: ChangeTopic, id?: string): void => {
    changeFeed.publish(topic, id).catch((e: unknown) => logger.warn({ err: e, topic }, 'change feed: publish failed (other nodes catch up on their timers)'));
  };
  const announceKeys = async (): Promise<void> => {
    await refreshKeys();
    announce('keys');
  };
  const accounts: AccountDeps = { store: accountStore, clock, ids, random, onKeysChanged: announceKeys };

  const telemetry = createTelemetry();
  const chargingStats = engines.chargingStats;
  if (chargingStats !== undefined) {
    // PostgreSQL's hot path (issue 15): how many operations took one round trip, went stale, or hit a backstop (an
    // optimistic decision the database refused for another reason than a stale version: a bug to look at, should be 0).
    const kinds = { ops: 'ops', roundTrips: 'round_trips', optimistic: 'optimistic', stale: 'stale', backstop: 'backstop' } as const;
    new Gauge({
      name: 'tokengrid_pg_charging_total',
      help: 'PostgreSQL charging store counters since start, by kind (ops, round_trips, optimistic, stale, backstop).',
      labelNames: ['kind'],
      registers: [telemetry.registry],
      collect() {
        const st = chargingStats();
        for (const [k, label] of Object.entries(kinds)) this.set({ kind: label }, st[k as keyof typeof kinds]);
      },
    });
  }
  const redisFallbacks = new Counter({
    name: 'tokengrid_redis_fallbacks_total',
    help: 'Redis failures that sent rate limiting to the per-node limiter (alert on any increase)',
    registers: [telemetry.registry],
  });
  // The security protection pack (issue 17 item 7): operator rules from config `guardrails`, hits counted per kind.
  const guardrailRules = compileRules(config.file.guardrails ?? {});
  const guardrailHits = new Counter({
    name: 'tokengrid_guardrail_hits_total',
    help: 'Guardrail hits of the security protection pack, by kind (phone, id, card, email, pattern, keyword, block_pattern, moderation).',
    labelNames: ['kind'],
    registers: [telemetry.registry],
  });
  // Context compression (issue 17 item 6): what it removed and how often its guard kept lines.
  const compressedTokens = new Counter({
    name: 'tokengrid_compression_tokens_total',
    help: 'Input tokens context compression removed (estimated), summed over requests.',
    registers: [telemetry.registry],
  });
  const compressionGuarded = new Counter({
    name: 'tokengrid_compression_guarded_total',
    help: "Stale tool outputs whose lines context compression's guard kept because the latest turn refers to them.",
    registers: [telemetry.registry],
  });
  const guardrailStage = createGuardrailStage({
    rules: () => guardrailRules,
    ...(opts.moderation !== undefined
      ? { moderation: opts.moderation }
      : config.file.guardrails?.moderationUrl !== undefined
        ? { moderation: httpModerationPort({ url: config.file.guardrails.moderationUrl }) }
        : {}),
    onHit: (kind, n) => guardrailHits.inc({ kind }, n),
    log: (obj, msg) => logger.info(obj, msg),
  });
  // The exact response cache and prompt-prefix stickiness (issue 17 items 4, 5): config responseCache /
  // stickyPrefix, env TOKENGRID_RESPONSE_CACHE / TOKENGRID_STICKY_PREFIX; Redis when TOKENGRID_REDIS_URL is set.
  const cacheConfig = config.file.responseCache;
  let responseCache: ResponseCachePort | undefined;
  if (settings.responseCache ?? cacheConfig.enabled) {
    if (redisUrl === undefined) responseCache = new MemoryResponseCache(clock, cacheConfig.maxBytes);
    else {
      const redis = new Redis(redisUrl, {
        commandTimeout: 500,
        maxRetriesPerRequest: 1,
        ...(opts.redisKeyPrefix === undefined ? {} : { keyPrefix: opts.redisKeyPrefix }),
      });
      // A lost connection makes lookups misses (the stage logs them); the client reconnects by itself.
      redis.on('error', (err: Error) => logger.warn({ err: err.message }, 'response cache redis connection error'));
      responseCache = new RedisResponseCache({ redis, clock, prefix: normalizePrefix(settings.redisPrefix) });
    }
  }
  const cacheResults = new Counter({
    name: 'tokengrid_response_cache_total',
    help: 'Exact response cache lookups and writes, by result (hit, miss, stored, error).',
    labelNames: ['result'],
    registers: [telemetry.registry],
  });
  const cacheStage = createCacheStage({
    cache: responseCache,
    clock,
    ttlMs: cacheConfig.ttlMs,
    chargeRatio: { num: Math.round(cacheConfig.chargeRatio * 10_000), den: 10_000 },
    stickyMinTokens: (settings.stickyPrefix ?? config.file.stickyPrefix.enabled) ? config.file.stickyPrefix.minTokens : undefined,
    onResult: (result) => cacheResults.inc({ result }),
    log: (obj, msg) => logger.warn(obj, msg),
  });
  const dispatcher = new Agent({ keepAliveTimeout: 30_000, keepAliveMaxTimeout: 600_000, connections: config.server.upstreamConnectionsMax, pipelining: 1 });
  const health = new DeploymentHealth(clock);
  const latency = new LatencyTracker(clock);
  const gateway = new Gateway({
    catalog: () => config.catalog,
    providers: () => providers,
    adapters: {
      'openai-compatible': createOpenAICompatibleAdapter({ fastPaths: config.server.fastPaths }),
      anthropic: createAnthropicAdapter(),
      gemini: createGeminiAdapter({ estimateTextTokens }),
    },
    dispatcher,
    charging,
    health,
    latency,
    limiter: redis?.limiter ?? new RateLimiter(),
    random,
    clock,
    now: () => performance.now(),
    metrics: telemetry.gateway,
    timeoutMsUpstreamHeaders: config.server.timeoutMsUpstreamHeaders,
    timeoutMsUpstreamBody: config.server.timeoutMsUpstreamBody,
    ...(engines.idempotency ? { idempotency: engines.idempotency } : {}),
    log: (level, obj, msg) => logger[level](obj, msg),
    keys,
    // Guardrails first (a blocked input is refused whole; the cache keys the redacted input and stores the redacted
    // output), then context compression (issue 17 item 6: it rewrites the request before it is estimated, so the
    // cache key and the prefix hash see what is sent), then the cache. QoS (issue 17 item 2) after the cache (a hit
    // takes no upstream slot), and only when some upstream has a `qos` limit in the config.
    stages: [
      guardrailStage,
      createCompressStage({
        ...(opts.compression !== undefined ? { options: opts.compression } : {}),
        onCompressed: (tokens, guarded) => {
          compressedTokens.inc(tokens);
          compressionGuarded.inc(guarded);
        },
        log: (obj, msg) => logger.info(obj, msg),
      }),
      cacheStage,
      ...(hasQosLimits(config.catalog) ? [createQosStage({ scheduler: createQosScheduler(telemetry.registry), log: (o, m) => logger.info(o, m) })] : []),
    ],
  });

  // Admin key: data/admin-key (created with mode 0600 on the first start), and TOKENGRID_ADMIN_KEY when set.
  const rootKeys = openRootAdminKeys({ dataDir: config.dataDir, envKey: settings.adminKey, random, logger });
  const adminKeyPath = rootKeys.path;
  const demoKeyPath = join(config.dataDir, 'demo-key');
  let firstStart: FirstStart | undefined;
  if (rootKeys.created !== undefined) {
    // On PostgreSQL a node's new data folder is not a new deployment: the demo account comes with an empty database.
    const demo =
      opts.bootstrapDemo !== false && engines.fresh
        ? await bootstrapDemoAccount({ accounts, charging, clock, demoKeyPath })
        : { demoKey: '', demoAccountId: '' };
    firstStart = { adminKey: rootKeys.created, ...demo };
  }
  await refreshKeys();

  // Audit log (hash-chained, append-only) and authentication-failure throttling per source address.
  const audit = new AuditLog({ store: engines.audit, clock, ids });
  const authThrottle = new AuthThrottle(settings.authFailuresPerMinute, 60_000);
  const authFailures = new Counter({
    name: 'tokengrid_auth_failures_total',
    help: 'Failed authentications (API key or admin key).',
    labelNames: ['kind'],
    registers: [telemetry.registry],
  });
  const authThrottled = new Counter({
    name: 'tokengrid_auth_throttled_total',
    help: 'Bursts of authentication failures from one address that were throttled (429).',
    registers: [telemetry.registry],
  });
  let draining = false;
  let ready = false;
  const streamOptions: StreamOptions = { ...defaultStreamOptions, ...opts.stream };
  const shellDeps: ShellDeps = {
    gateway,
    keys,
    clock,
    ids,
    now: () => performance.now(),
    bodyLimitBytes: config.server.bodyLimitBytes,
    streamOptions,
    log: logger,
    // The operator keys of the data folder first, then the admin keys with roles (POST /admin/admin-keys).
    authenticateAdmin: (token) => rootKeys.authenticate(token) ?? billing.adminKeys.authenticate(token),
    metricsText: async () => ({ contentType: telemetry.registry.contentType, body: await telemetry.registry.metrics() }),
    isReady: () => ready,
    isDraining: () => draining,
    onRequestDone: (route, status, latencyS) => telemetry.requestDone(route, status, latencyS),
    authThrottle,
    metricsToken: settings.metricsToken,
    onAuthFailed(f) {
      const { burstStarted, failures } = authThrottle.fail(f.source, clock.nowMs());
      authFailures.inc({ kind: f.kind });
      if (burstStarted) {
        authThrottled.inc();
        logger.warn(
          { source: f.source, failures, windowS: authThrottle.windowMs / 1000 },
          'authentication failures from one address: throttled (429) until the window ends',
        );
      }
      if (f.kind === 'admin') {
        if (failures < authThrottle.limit)
          logger.warn({ source: f.source, requestId: f.requestId, method: f.method, path: f.path }, 'admin authentication failed');
        auditAuthFailure(audit, f).catch((e: unknown) => logger.error({ err: e }, 'audit log append failed'));
      }
    },
    onUnknownRoute: (method) => telemetry.unknownRoute(method),
    // POST /v1/responses with store: true (OpenAI's default) keeps responses this long (TOKENGRID_RESPONSE_TTL_DAYS).
    responses: { store: engines.responses, ttlMs: settings.responseTtlMs ?? DEFAULT_RESPONSE_TTL_MS },
  };
  const adminDeps: {
    accounts: AccountDeps;
    charging: ChargingService;
    bodyLimitBytes: number;
    clock: Clock;
    memberLimit?: (accountId: string) => Promise<{ limit: number; what: 'seats' | 'members' } | null>;
    modelExists: (name: string) => boolean;
    suspendedByRole: (accountId: string) => Promise<string | undefined>;
  } = {
    accounts,
    charging,
    bodyLimitBytes: config.server.bodyLimitBytes,
    clock,
    // Who suspended an account is in the audit log: an enterprise admin may lift only its own suspensions.
    suspendedByRole: async (accountId) =>
      (await audit.list({ accountId, action: 'account.update', limit: 1000 })).find(
        (e) => e.outcome < 300 && (e.after as { status?: string } | null)?.status === 'suspended',
      )?.role,
    modelExists: (name) => config.catalog.models.has(name) || config.catalog.aliases.has(name) || config.catalog.groups.has(name),
    // Seats (team plans) and members (family plans) bound how many members an account may add.
    memberLimit: async (accountId) => {
      const e = await billing.entitlements(accountId);
      if (e.seats !== null) return { limit: e.seats, what: 'seats' };
      return e.members !== null ? { limit: e.members, what: 'members' } : null;
    },
  };
  // --- billing wiring (issue 5): build the billing service here and pass it to its routes ---
  const offers = openOffersFile({
    path: resolveOffersFile(config.file, configPath, settings.offersFile),
    context: {
      knownModels: new Set<string>([...config.catalog.models.keys(), ...config.catalog.aliases.keys(), ...config.catalog.groups.keys()]),
      walletCoinsPerUnit: coinsPerYuan,
      models: config.catalog,
    },
    logger,
    watch: opts.timers !== false,
  });
  const secretFor = (fromEnv: string | undefined, envName: string, fileName: string): string =>
    signingSecret({ fromEnv, envName, dataDir: config.dataDir, fileName, random, logger });
  const carrierDir = settings.carrierExportDir ?? join(config.dataDir, 'carrier-exports');
  const carrierUrl = settings.carrierWebhookUrl;
  const carrier = carrierUrl
    ? webhookChannel({
        url: carrierUrl,
        secret: secretFor(settings.carrierWebhookSecret, 'TOKENGRID_CARRIER_WEBHOOK_SECRET', 'carrier-webhook-secret'),
        clock,
        post: async (url, headers, body) => {
          const r = await fetch(url, { method: 'POST', headers, body, signal: AbortSignal.timeout(10_000) });
          return { status: r.status, body: await r.text() };
        },
      })
    : fileExportChannel({
        clock,
        write: async (name, text) => {
          mkdirSync(carrierDir, { recursive: true });
          writeFileSync(join(carrierDir, name), text, { mode: 0o600 });
        },
      });
  const renewalFailures = new Counter({
    name: 'tokengrid_renewal_failures_total',
    help: 'Accounts whose renewal failed in a renewal run, by stage (alert on any increase)',
    labelNames: ['stage'],
    registers: [telemetry.registry],
  });
  const billingCore = createBillingService({
    store: engines.billing,
    charging,
    accounts: accountStore,
    clock,
    ids,
    random,
    offers: () => offers.holder.current,
    models: () => config.catalog,
    carrier,
    walletCoinsPerUnit: coinsPerYuan,
    log: (level, obj, msg) => logger[level](obj, msg),
    // Issue 12: alert on any increase (an account whose renewal fails is listed, logged, and counted here).
    onRenewalFailure: (f) => renewalFailures.inc({ stage: f.stage }),
    // Issue 12 (F2): self-service phone-bill orders need a linked phone (or an operator's phone-bill order).
    phoneBillChannel: (accountId) => phones.phonesOf(accountId).length > 0,
  });
  // What changes an account's plan limits, package models or features is announced to the other nodes.
  const announcing =
    <A extends unknown[], R>(f: (...a: A) => Promise<R>) =>
    async (...a: A): Promise<R> => {
      const r = await f(...a);
      // This node applies it at once (the feed skips its own changes); the others on the announcement.
      onPlans();
      announce('plans');
      return r;
    };
  const billing: typeof billingCore = {
    ...billingCore,
    subscribe: announcing(billingCore.subscribe),
    changePlan: announcing(billingCore.changePlan),
    cancel: announcing(billingCore.cancel),
    buyAddon: announcing(billingCore.buyAddon),
    redeemCode: announcing(billingCore.redeemCode),
  };
  await billing.adminKeys.load();
  await refreshPlanLimits();
  // Changes from the other nodes (their own changes were applied where they were made). One refresh of a kind runs
  // at a time; changes that arrive meanwhile are folded into one more run.
  const coalesced = (fn: () => Promise<void>): (() => void) => {
    let running = false;
    let again = false;
    const run = (): void => {
      if (running) {
        again = true;
        return;
      }
      running = true;
      fn()
        .catch((e: unknown) => logger.error({ err: e }, 'refresh after a change from another node failed'))
        .finally(() => {
          running = false;
          if (again) {
            again = false;
            run();
          }
        });
    };
    return run;
  };
  const onKeys = coalesced(refreshKeys);
  const onPlans = coalesced(refreshPlanLimits);
  const onOffers = coalesced(async () => {
    offers.reload();
    await refreshPlanLimits();
  });
  const unsubscribeChanges = changeFeed.subscribe((c) => {
    if (c.origin === nodeId) return;
    if (c.topic === 'keys' || c.topic === 'accounts') onKeys();
    else if (c.topic === 'plans') onPlans();
    else onOffers();
  });
  const reloadOffers: typeof offers.reload = () => {
    const r = offers.reload();
    if (r.ok) announce('offers');
    return r;
  };
  const billingDeps = { ...adminDeps, billing, reloadOffers, offersFile: offers.path };
  const parentOf = async (id: string) => (await accountStore.getAccount(id))?.parentId;
  const canAccess = (admin: AdminIdentity, accountId: string): Promise<boolean> =>
    requireAccountAccess(admin, accountId, parentOf).then(
      () => true,
      () => false,
    );
  // --- end billing wiring ---
  const sms = devSmsSender(config.dataDir, logger);
  const phones = filePhoneBook(config.dataDir);
  const alertDeps = { charging, sms, phones, settings: fileSettingsBook(config.dataDir) };
  const routes: Route<never>[] = [
    ...opsRoutes(shellDeps),
    ...(openaiRoutes(shellDeps) as Route<never>[]),
    ...(anthropicRoutes(shellDeps) as Route<never>[]),
    ...(accountAdminRoutes(adminDeps) as Route<never>[]),
    ...(chargingAdminRoutes(adminDeps) as Route<never>[]),
    ...(billingAdminRoutes(billingDeps) as Route<never>[]),
    ...(securityAdminRoutes({ audit, canAccess, rotateRootKey: rootKeys.rotate }) as Route<never>[]),
    // Self-service writes (orders, keys, members, caps, phone, notifications) go to the audit log too, actor key:<id>.
    ...audited(
      [
        ...(selfRoutes(billingDeps) as Route<never>[]),
        ...consoleRoutes({
          dir: join(import.meta.dirname, '../console'),
          accounts,
          clock,
          random,
          sms,
          phones,
          bodyLimitBytes: config.server.bodyLimitBytes,
          billing: billingDeps,
          deployments: () => {
            const snap = health.snapshot();
            return [...config.catalog.models.values()].flatMap((m) =>
              m.deployments.map((d) => ({
                model: m.id,
                deployment: d.id,
                provider: d.provider,
                region: d.region,
                weight: d.weight,
                state: snap[d.id]?.state ?? 'closed',
                failures: snap[d.id]?.failures ?? 0,
              })),
            );
          },
          recentUsage: async (sinceMs) => {
            const out: { deploymentId: string; latencyMs: number; status: string }[] = [];
            for (const a of await accountStore.listAccounts())
              for (const u of await charging.listUsage(a.id, { fromMs: sinceMs, toMs: clock.nowMs() + 1 })) out.push(u);
            return out;
          },
        }),
        ...notificationRoutes({ ...alertDeps, billing: billingDeps, bodyLimitBytes: config.server.bodyLimitBytes }),
      ],
      audit,
      (e) => logger.error({ err: e }, 'audit log append failed'),
    ),
  ];
  // Every admin route (auth: 'admin', whichever list it comes from) passes the permission matrix
  // (api/admin/permissions.ts; a route it does not list is operator-only) and writes the audit log.
  const shell = createHttpShell(shellDeps, guardAdminRoutes(routes as Route<AdminIdentity>[], { canAccess, onWrite: auditWriteHook(audit) }) as Route<never>[]);

  // Charging events (50/80/100 % of an allowance) go to the operator's webhook, signed, with retries.
  const webhookUrl = settings.webhookUrl ?? config.file.notifications?.webhookUrl;
  let webhook: WebhookDeliverer | undefined;
  const webhookSigningSecret = webhookUrl ? secretFor(settings.webhookSecret, 'TOKENGRID_WEBHOOK_SECRET', 'webhook-secret') : undefined;
  if (webhookUrl && webhookSigningSecret !== undefined && opts.timers !== false) {
    webhook = createWebhookDeliverer({
      outbox: chargingStore,
      clock,
      config: { url: webhookUrl, secret: webhookSigningSecret },
      onError: (e) => logger.error({ err: e }, 'webhook delivery loop failed'),
    });
    webhook.start();
  }

  const timers: NodeJS.Timeout[] = [];
  if (opts.timers !== false) {
    const every = (ms: number, fn: () => Promise<unknown>): void => {
      const t = setInterval(() => {
        fn().catch((e: unknown) => logger.error({ err: e }, 'background job failed'));
      }, ms);
      t.unref();
      timers.push(t);
    };
    every(opts.sweepIntervalMs ?? 15_000, () => charging.sweepExpired());
    every(60_000, () => charging.renewDue());
    every(60_000, () => billing.renewDue());
    every(10_000, refreshPlanLimits);
    every(600_000, () => shellDeps.responses!.store.sweep(clock.nowMs()));
    every(30_000, () => deliverSmsAlerts(alertDeps));
  }
  await charging.renewDue();
  await charging.sweepExpired();

  return {
    config,
    db: engines.sqlite,
    clock,
    accounts,
    charging,
    chargingStore,
    gateway,
    shell,
    telemetry,
    logger,
    emulator,
    firstStart,
    adminKeyPath,
    demoKeyPath,
    audit,
    refreshKeys,
    refreshPlanLimits,
    async listen() {
      await new Promise<void>((resolve, reject) => {
        shell.server.once('error', reject);
        shell.server.listen(config.server.port, config.server.host, () => {
          shell.server.off('error', reject);
          resolve();
        });
      });
      ready = true;
      const addr = shell.server.address();
      const port = typeof addr === 'object' && addr ? addr.port : config.server.port;
      const host = config.server.host.includes(':') ? `[${config.server.host}]` : config.server.host;
      return { url: `http://${host}:${port}`, port };
    },
    async close(graceMs = config.server.shutdownGraceMs) {
      draining = true;
      for (const t of timers) clearInterval(t);
      await webhook?.stop();
      offers.close();
      unsubscribeChanges();
      const closed = new Promise<void>((resolve) => shell.server.close(() => resolve()));
      shell.server.closeIdleConnections();
      const deadline = performance.now() + graceMs;
      while (shell.inFlight() > 0 && performance.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      shell.server.closeAllConnections();
      await closed;
      await dispatcher.close().catch(() => undefined);
      if (emulator) await emulator.close();
      await responseCache?.close?.();
      await redis?.close();
      await engines.changeFeed?.close();
      await engines.close();
    },
  };
}

/** Development SMS sender (the console's phone sign-in): the text goes to the log and to <dataDir>/sms-outbox.log. */
function devSmsSender(dataDir: string, logger: Logger): SmsSender {
  return {
    async send(phone, text) {
      logger.info({ phone, text }, 'sms (development sender: not delivered)');
      appendFileSync(join(dataDir, 'sms-outbox.log'), `${new Date().toISOString()} ${phone} ${text}\n`, { mode: 0o600 });
    },
  };
}

/** Which account a phone number signs in to: <dataDir>/console-phones.json. */
function filePhoneBook(dataDir: string): PhoneBook {
  const file = join(dataDir, 'console-phones.json');
  let map: Record<string, string> = {};
  try {
    map = JSON.parse(readFileSync(file, 'utf8')) as Record<string, string>;
  } catch {
    /* none yet */
  }
  return {
    accountOf: (phone) => map[phone],
    link(phone, accountId) {
      map[phone] = accountId;
      writeFileSync(file, JSON.stringify(map, null, 1), { mode: 0o600 });
    },
    phonesOf: (accountId) => Object.keys(map).filter((p) => map[p] === accountId),
  };
}

/** The console's notification settings per account: <dataDir>/console-notifications.json. */
function fileSettingsBook(dataDir: string): SettingsBook {
  const file = join(dataDir, 'console-notifications.json');
  let map: Record<string, NotificationSettings> = {};
  try {
    map = JSON.parse(readFileSync(file, 'utf8')) as Record<string, NotificationSettings>;
  } catch {
    /* none yet */
  }
  return {
    get: (accountId) => map[accountId],
    set(accountId, st) {
      map[accountId] = st;
      writeFileSync(file, JSON.stringify(map, null, 1), { mode: 0o600 });
    },
    accounts: () => Object.keys(map),
  };
}
