/**
 * The composition root: builds stores, clock, ids, the undici Agent, adapters, engines and the HTTP shell,
 * and wires them. No logic lives here; nothing else constructs an implementation.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, unwatchFile, watchFile, writeFileSync } from 'node:fs';
import { dirname, join, resolve as resolvePath } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Agent } from 'undici';
import { Counter } from 'prom-client';
import { constantTimeEqual, createIdGenerator, mulDiv, cryptoRandom, err, ok, sha256Hex, systemClock, type Clock, type Random, type Result } from './core/index.ts';
import { createAccount, createApiKey, type AccountDeps, type KeyLimits } from './accounts/index.ts';
import type { ModelCatalog } from './catalog/index.ts';
import { OfferCatalogHolder, createBillingService, fileExportChannel, parseOfferCatalog, webhookChannel } from './billing/index.ts';
import { openSqliteBillingStore } from './store/sqlite/billing-store.ts';
import { createChargingEngine, defaultChargingConfig, type ChargingConfig, type ChargingService, type ChargingStore, type RateTable } from './charging/index.ts';
import { loadConfigFile, resolveConfig, DEFAULT_CONFIG_PATH, type RuntimeConfig } from './config/index.ts';
import { startEmulator, type Emulator } from './emulator/index.ts';
import { Gateway, KeySnapshot, RateLimiter, defaultStreamOptions, type StreamOptions } from './gateway/index.ts';
import { DeploymentHealth } from './routing/index.ts';
import { createAnthropicAdapter } from './providers/anthropic/index.ts';
import { createGeminiAdapter } from './providers/gemini/index.ts';
import { createOpenAICompatibleAdapter } from './providers/openai-compatible/index.ts';
import type { ProviderConfig } from './providers/index.ts';
import { estimateTextTokens } from './wire/index.ts';
import { lockDataDir, openSqlite, type SqliteDb } from './store/sqlite/db.ts';
import { WalFlusher } from './store/sqlite/wal-flusher.ts';
import { openSqliteAccountStore } from './store/sqlite/accounts-store.ts';
import { openSqliteChargingStore } from './store/sqlite/charging-store.ts';
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
import type { AdminIdentity, ShellDeps } from './api/shell-deps.ts';
import type { Route } from './api/router.ts';

export interface AppOptions {
  configPath?: string;
  dataDir?: string;
  host?: string;
  port?: number;
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
}

export interface FirstStart {
  adminKey: string;
  demoKey: string;
  demoAccountId: string;
}

export interface App {
  config: RuntimeConfig;
  db: SqliteDb;
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
      coinsPerTokenInput: m.coins.input, coinsPerTokenOutput: m.coins.output, coinsPerTokenCachedInput: m.coins.cachedInput,
      coinsPerTokenReasoning: m.coins.reasoning,
      priceMicrosPerMillionInput: price(m.coins.input), priceMicrosPerMillionOutput: price(m.coins.output),
      priceMicrosPerMillionCachedInput: price(m.coins.cachedInput),
      perRequestCharge: m.requestsPerCall, modelGroups: m.groups,
    };
  }
  return { version: `${catalog.version}-cpy${coinsPerYuan}`, currency: 'CNY', minorUnitsPerMajor: 100, models };
}

export async function createApp(opts: AppOptions = {}): Promise<App> {
  const env = opts.env ?? process.env;
  const logger = opts.logger ?? createLogger();
  const configPath = opts.configPath ?? env.TOKENGRID_CONFIG ?? DEFAULT_CONFIG_PATH;
  const config = resolveConfig(loadConfigFile(configPath), env, {
    host: opts.host ?? env.TOKENGRID_HOST, port: opts.port ?? (env.TOKENGRID_PORT ? Number(env.TOKENGRID_PORT) : undefined),
    dataDir: opts.dataDir ?? env.TOKENGRID_DATA_DIR,
  });
  const clock = opts.clock ?? systemClock;
  const random = opts.random ?? cryptoRandom;
  const ids = createIdGenerator(clock, random);
  const releaseDataDir = lockDataDir(config.dataDir);
  const dbPath = join(config.dataDir, 'tokengrid.db');
  const db = openSqlite(dbPath, { exclusive: true });
  // Keeps checkpoints off the event loop's critical path (see wal-flusher.ts).
  const walFlusher = new WalFlusher(`${dbPath}-wal`, { onError: (err) => logger.warn({ err }, 'background WAL flush failed; checkpoints will flush on the event loop') });
  const accountStore = openSqliteAccountStore(db);
  const chargingStore = openSqliteChargingStore(db, { afterCommit: () => walFlusher.kick() });

  let emulator: Emulator | undefined;
  const mockProviders = [...config.providers.values()].filter((p) => p.isMock);
  if (mockProviders.length > 0) {
    let base = opts.emulatorUrl;
    if (!base) {
      emulator = await startEmulator({ host: '127.0.0.1', port: 0 });
      base = emulator.url;
    }
    for (const p of mockProviders) {
      p.baseUrl = p.adapter === 'openai-compatible' ? `${base}/v1` : base;
      p.apiKey = 'tokengrid-emulator';
    }
  }
  const providers: ReadonlyMap<string, ProviderConfig> = config.providers;

  const coinsPerYuan = Number((config.file.charging as { walletCoinsPerYuan?: number } | undefined)?.walletCoinsPerYuan ?? 400_000);
  const rates = rateTableFromCatalog(config.catalog, coinsPerYuan);
  const charging = createChargingEngine({ store: chargingStore, clock, ids, rates: () => rates, config: { ...defaultChargingConfig, ...opts.charging } });

  const keys = new KeySnapshot();
  // Plan-level rate limits per account, from the billing entitlements (refreshed on a timer and with the keys).
  let planLimits = new Map<string, KeyLimits>();
  let planLimitsOf: (accountId: string) => Promise<KeyLimits> = async () => ({});
  const refreshKeys = async (): Promise<void> => {
    const [all, accountsList] = await Promise.all([accountStore.listKeys(), accountStore.listAccounts()]);
    keys.replace(all, accountsList.filter((a) => a.status === 'active').map((a) => a.id), planLimits);
  };
  const refreshPlanLimits = async (): Promise<void> => {
    const next = new Map<string, KeyLimits>();
    for (const accountId of new Set((await accountStore.listKeys()).map((k) => k.accountId))) {
      const limits = await planLimitsOf(accountId);
      if (Object.keys(limits).length > 0) next.set(accountId, limits);
    }
    planLimits = next;
    await refreshKeys();
  };
  const accounts: AccountDeps = { store: accountStore, clock, ids, random, onKeysChanged: refreshKeys };

  const telemetry = createTelemetry();
  const dispatcher = new Agent({ keepAliveTimeout: 30_000, keepAliveMaxTimeout: 600_000, connections: config.server.upstreamConnectionsMax, pipelining: 1 });
  const gateway = new Gateway({
    catalog: () => config.catalog, providers: () => providers,
    adapters: { 'openai-compatible': createOpenAICompatibleAdapter(), anthropic: createAnthropicAdapter(), gemini: createGeminiAdapter({ estimateTextTokens }) },
    dispatcher, charging, health: new DeploymentHealth(clock), limiter: new RateLimiter(), random, clock,
    now: () => performance.now(), metrics: telemetry.gateway,
    timeoutMsUpstreamHeaders: config.server.timeoutMsUpstreamHeaders, timeoutMsUpstreamBody: config.server.timeoutMsUpstreamBody,
    log: (level, obj, msg) => logger[level](obj, msg),
  });

  // Admin key: from the environment, or the data folder's file (created with mode 0600 on first start).
  const adminKeyPath = join(config.dataDir, 'admin-key');
  let firstStart: FirstStart | undefined;
  const firstRun = !existsSync(adminKeyPath);
  if (firstRun) {
    const adminKey = `tgadmin-${random.bytes(24).toString('base64url')}`;
    writeFileSync(adminKeyPath, `${adminKey}\n`, { mode: 0o600 });
    chmodSync(adminKeyPath, 0o600);
    firstStart = { adminKey, demoKey: '', demoAccountId: '' };
  }
  const adminKeyHashes = new Map<string, AdminIdentity>();
  adminKeyHashes.set(sha256Hex(readFileSync(adminKeyPath, 'utf8').trim()), { id: 'admin', role: 'operator', accountIds: null });
  if (env.TOKENGRID_ADMIN_KEY) adminKeyHashes.set(sha256Hex(env.TOKENGRID_ADMIN_KEY), { id: 'admin-env', role: 'operator', accountIds: null });
  const authenticateAdmin = (token: string | undefined): AdminIdentity | undefined => {
    if (!token) return undefined;
    const h = sha256Hex(token);
    for (const [hash, identity] of adminKeyHashes) if (constantTimeEqual(h, hash)) return identity;
    return undefined;
  };

  if (firstRun && opts.bootstrapDemo !== false) {
    const acct = await createAccount(accounts, { name: 'Demo account', kind: 'individual' });
    if (!acct.ok) throw new Error(acct.message);
    const key = await createApiKey(accounts, { accountId: acct.value.id, name: 'demo' });
    if (!key.ok) throw new Error(key.message);
    const now = clock.nowMs();
    // A 30M-token trial (the Unicom offer) valid 30 days, and 10 CNY in the wallet for pay-as-you-go.
    await charging.grantBucket({ accountId: acct.value.id, unit: 'tokens', amount: 30_000_000, effectiveAtMs: now, expiresAtMs: now + 30 * 86_400_000, kind: 'trial', sourceRef: 'demo-trial' });
    await charging.setAccountPolicy(acct.value.id, { overage: 'wallet', currency: 'CNY' });
    await charging.topUpWallet({ accountId: acct.value.id, currency: 'CNY', amountMinor: 1000, sourceRef: 'demo-wallet' });
    firstStart = { adminKey: firstStart!.adminKey, demoKey: key.value.key, demoAccountId: acct.value.id };
  }
  await refreshKeys();

  let draining = false;
  let ready = false;
  const streamOptions: StreamOptions = { ...defaultStreamOptions, ...opts.stream };
  const shellDeps: ShellDeps = {
    gateway, keys, clock, ids, now: () => performance.now(), bodyLimitBytes: config.server.bodyLimitBytes, streamOptions,
    log: logger, authenticateAdmin,
    metricsText: async () => ({ contentType: telemetry.registry.contentType, body: await telemetry.registry.metrics() }),
    isReady: () => ready, isDraining: () => draining,
    onRequestDone: (route, status, latencyS) => telemetry.requestDone(route, status, latencyS),
  };
  const adminDeps: { accounts: AccountDeps; charging: ChargingService; bodyLimitBytes: number; clock: Clock; memberLimit?: (accountId: string) => Promise<{ limit: number; what: 'seats' | 'members' } | null> } = {
    accounts, charging, bodyLimitBytes: config.server.bodyLimitBytes, clock,
  };
  // --- billing wiring (issue 5): build the billing service here and pass it to its routes ---
  const offersFile = resolvePath(env.TOKENGRID_OFFERS_FILE ?? (config.file.catalog?.offersFile
    ? resolvePath(dirname(configPath), config.file.catalog.offersFile) : join(import.meta.dirname, '../config/offers.yaml')));
  const offerContext = {
    knownModels: new Set<string>([...config.catalog.models.keys(), ...config.catalog.aliases.keys(), ...config.catalog.groups.keys()]),
    walletCoinsPerUnit: coinsPerYuan,
    models: config.catalog,
  };
  const firstOffers = parseOfferCatalog(readFileSync(offersFile, 'utf8'), offerContext);
  if (!firstOffers.ok) throw new Error(`${offersFile}: ${firstOffers.message}`);
  for (const w of firstOffers.value.warnings) logger.warn({ file: offersFile }, w);
  const offers = new OfferCatalogHolder(firstOffers.value);
  const reloadOffers = (): Result<{ version: string; offers: number; warnings: string[] }, string> => {
    let text: string;
    try { text = readFileSync(offersFile, 'utf8'); } catch (e) { return err('invalid', `cannot read ${offersFile}: ${(e as Error).message}`); }
    const r = offers.reload(text, offerContext);
    if (!r.ok) { logger.error({ file: offersFile }, r.message); return r; }
    logger.info({ file: offersFile, version: r.value.version, offers: r.value.offers.size }, 'offer catalog reloaded');
    return ok({ version: r.value.version, offers: r.value.offers.size, warnings: r.value.warnings });
  };
  const carrierDir = env.TOKENGRID_CARRIER_EXPORT_DIR ?? join(config.dataDir, 'carrier-exports');
  const carrier = env.TOKENGRID_CARRIER_WEBHOOK_URL
    ? webhookChannel({
      url: env.TOKENGRID_CARRIER_WEBHOOK_URL, secret: env.TOKENGRID_CARRIER_WEBHOOK_SECRET ?? '', clock,
      post: async (url, headers, body) => {
        const r = await fetch(url, { method: 'POST', headers, body, signal: AbortSignal.timeout(10_000) });
        return { status: r.status, body: await r.text() };
      },
    })
    : fileExportChannel({ clock, write: async (name, text) => { mkdirSync(carrierDir, { recursive: true }); writeFileSync(join(carrierDir, name), text, { mode: 0o600 }); } });
  const renewalFailures = new Counter({
    name: 'tokengrid_renewal_failures_total', help: 'Accounts whose renewal failed in a renewal run, by stage (alert on any increase)',
    labelNames: ['stage'], registers: [telemetry.registry],
  });
  const billing = createBillingService({
    store: openSqliteBillingStore(db), charging, chargingStore, accounts: accountStore, clock, ids, random, offers: () => offers.current,
    models: () => config.catalog, carrier, walletCoinsPerUnit: coinsPerYuan,
    log: (level, obj, msg) => logger[level](obj, msg),
    // Issue 12: alert on any increase (an account whose renewal fails is listed, logged, and counted here).
    onRenewalFailure: (f) => renewalFailures.inc({ stage: f.stage }),
  });
  await billing.adminKeys.load();
  planLimitsOf = async (accountId) => (await billing.entitlements(accountId)).rateLimits;
  // Seats (team plans) and members (family plans) bound how many members an account may add.
  adminDeps.memberLimit = async (accountId) => {
    const e = await billing.entitlements(accountId);
    if (e.seats !== null) return { limit: e.seats, what: 'seats' };
    return e.members !== null ? { limit: e.members, what: 'members' } : null;
  };
  await refreshPlanLimits();
  // Admin keys with roles (POST /admin/admin-keys) are checked after the operator key of the data folder.
  shellDeps.authenticateAdmin = (token) => authenticateAdmin(token) ?? billing.adminKeys.authenticate(token);
  const onOffersChanged = (): void => { reloadOffers(); };
  if (opts.timers !== false) watchFile(offersFile, { interval: 2000, persistent: false }, onOffersChanged);
  const billingDeps = { ...adminDeps, billing, reloadOffers, offersFile };
  // --- end billing wiring ---
  const routes: Route<never>[] = [
    ...opsRoutes(shellDeps),
    ...(openaiRoutes(shellDeps) as Route<never>[]),
    ...(anthropicRoutes(shellDeps) as Route<never>[]),
    ...(accountAdminRoutes(adminDeps) as Route<never>[]),
    ...(chargingAdminRoutes(adminDeps) as Route<never>[]),
    ...(billingAdminRoutes(billingDeps) as Route<never>[]),
    ...(selfRoutes(billingDeps) as Route<never>[]),
  ];
  const shell = createHttpShell(shellDeps, routes);

  // Charging events (50/80/100 % of an allowance) go to the operator's webhook, signed, with retries.
  const webhookUrl = env.TOKENGRID_WEBHOOK_URL ?? config.file.notifications?.webhookUrl;
  let webhook: WebhookDeliverer | undefined;
  if (webhookUrl && opts.timers !== false) {
    webhook = createWebhookDeliverer({
      outbox: chargingStore, clock, config: { url: webhookUrl, secret: env.TOKENGRID_WEBHOOK_SECRET ?? null },
      onError: (e) => logger.error({ err: e }, 'webhook delivery loop failed'),
    });
    webhook.start();
  }

  const timers: NodeJS.Timeout[] = [];
  if (opts.timers !== false) {
    const every = (ms: number, fn: () => Promise<unknown>): void => {
      const t = setInterval(() => { fn().catch((e: unknown) => logger.error({ err: e }, 'background job failed')); }, ms);
      t.unref();
      timers.push(t);
    };
    every(opts.sweepIntervalMs ?? 15_000, () => charging.sweepExpired());
    every(60_000, () => charging.renewDue());
    every(60_000, () => billing.renewDue());
    every(10_000, refreshPlanLimits);
  }
  await charging.renewDue();
  await charging.sweepExpired();

  return {
    config, db, clock, accounts, charging, chargingStore, gateway, shell, telemetry, logger, emulator, firstStart, adminKeyPath, refreshKeys, refreshPlanLimits,
    async listen() {
      await new Promise<void>((resolve, reject) => {
        shell.server.once('error', reject);
        shell.server.listen(config.server.port, config.server.host, () => { shell.server.off('error', reject); resolve(); });
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
      unwatchFile(offersFile, onOffersChanged);
      const closed = new Promise<void>((resolve) => shell.server.close(() => resolve()));
      shell.server.closeIdleConnections();
      const deadline = performance.now() + graceMs;
      while (shell.inFlight() > 0 && performance.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      shell.server.closeAllConnections();
      await closed;
      await dispatcher.close().catch(() => undefined);
      if (emulator) await emulator.close();
      db.close();
      walFlusher.close();
      releaseDataDir();
    },
  };
}
