import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WEBHOOK_SECRET_MIN_LENGTH } from '../notifications/webhook.ts';
import { ADMIN_KEY_MIN_LENGTH, ENV_WEBHOOK_SECRET_MIN_LENGTH, parseEnv } from './env.ts';
import { ConfigError } from './load.ts';

test('an empty environment gives the defaults', () => {
  assert.deepEqual(parseEnv({}), {
    configPath: undefined,
    host: undefined,
    port: undefined,
    dataDir: undefined,
    logLevel: 'info',
    adminKey: undefined,
    metricsToken: undefined,
    offersFile: undefined,
    webhookUrl: undefined,
    webhookSecret: undefined,
    carrierWebhookUrl: undefined,
    carrierWebhookSecret: undefined,
    carrierExportDir: undefined,
    authFailuresPerMinute: 20,
    responseTtlMs: undefined,
    fastPaths: undefined,
    databaseUrl: undefined,
    redisUrl: undefined,
    redisPrefix: undefined,
    responseCache: undefined,
    stickyPrefix: undefined,
  });
});

test('TOKENGRID_DATABASE_URL takes a postgres:// URL; anything else is refused naming the variable', () => {
  assert.equal(parseEnv({ TOKENGRID_DATABASE_URL: ' postgres://tg:pw@db:5432/tokengrid ' }).databaseUrl, 'postgres://tg:pw@db:5432/tokengrid');
  assert.equal(parseEnv({ TOKENGRID_DATABASE_URL: 'postgresql://db/tg' }).databaseUrl, 'postgresql://db/tg');
  assert.throws(() => parseEnv({ TOKENGRID_DATABASE_URL: 'mysql://db/tg' }), /TOKENGRID_DATABASE_URL must be a postgres:\/\/ or postgresql:\/\/ URL/);
});

test('the response cache and stickiness switches are on or off; TOKENGRID_REDIS_URL must be a redis URL', () => {
  assert.deepEqual([parseEnv({ TOKENGRID_RESPONSE_CACHE: 'off' }).responseCache, parseEnv({ TOKENGRID_STICKY_PREFIX: 'On' }).stickyPrefix], [false, true]);
  assert.throws(() => parseEnv({ TOKENGRID_RESPONSE_CACHE: 'yes' }), /TOKENGRID_RESPONSE_CACHE must be on or off/);
  assert.equal(parseEnv({ TOKENGRID_REDIS_URL: 'redis://127.0.0.1:6379/0' }).redisUrl, 'redis://127.0.0.1:6379/0');
  assert.throws(() => parseEnv({ TOKENGRID_REDIS_URL: 'http://x' }), /TOKENGRID_REDIS_URL must be a redis/);
});

test('TOKENGRID_FAST_PATHS is on or off (any case), anything else is refused naming the variable', () => {
  assert.equal(parseEnv({ TOKENGRID_FAST_PATHS: 'off' }).fastPaths, false);
  assert.equal(parseEnv({ TOKENGRID_FAST_PATHS: ' ON ' }).fastPaths, true);
  assert.throws(() => parseEnv({ TOKENGRID_FAST_PATHS: 'maybe' }), /TOKENGRID_FAST_PATHS must be on or off/);
});

test('every variable is read, typed and trimmed where it is a secret; blank means unset', () => {
  const key = 'k'.repeat(ADMIN_KEY_MIN_LENGTH);
  const s = parseEnv({
    TOKENGRID_CONFIG: '/etc/tg.yaml',
    TOKENGRID_HOST: '0.0.0.0',
    TOKENGRID_PORT: '0',
    TOKENGRID_DATA_DIR: '/var/tg',
    TOKENGRID_LOG_LEVEL: 'debug',
    TOKENGRID_ADMIN_KEY: ` ${key}\n`,
    TOKENGRID_METRICS_TOKEN: 'm',
    TOKENGRID_OFFERS_FILE: 'offers.yaml',
    TOKENGRID_WEBHOOK_URL: 'http://h/w',
    TOKENGRID_WEBHOOK_SECRET: ` ${'s'.repeat(16)} `,
    TOKENGRID_CARRIER_WEBHOOK_URL: 'http://h/c',
    TOKENGRID_CARRIER_WEBHOOK_SECRET: 'c'.repeat(20),
    TOKENGRID_CARRIER_EXPORT_DIR: '/var/exports',
    TOKENGRID_AUTH_FAILURES_PER_MINUTE: '5',
    TOKENGRID_RESPONSE_TTL_DAYS: '1.5',
    UNRELATED: 'x',
  });
  assert.equal(s.configPath, '/etc/tg.yaml');
  assert.equal(s.host, '0.0.0.0');
  assert.equal(s.port, 0);
  assert.equal(s.dataDir, '/var/tg');
  assert.equal(s.logLevel, 'debug');
  assert.equal(s.adminKey, key);
  assert.equal(s.metricsToken, 'm');
  assert.equal(s.offersFile, 'offers.yaml');
  assert.equal(s.webhookUrl, 'http://h/w');
  assert.equal(s.webhookSecret, 's'.repeat(16));
  assert.equal(s.carrierWebhookUrl, 'http://h/c');
  assert.equal(s.carrierWebhookSecret, 'c'.repeat(20));
  assert.equal(s.carrierExportDir, '/var/exports');
  assert.equal(s.authFailuresPerMinute, 5);
  assert.equal(s.responseTtlMs, 1.5 * 86_400_000);
  assert.deepEqual(parseEnv({ TOKENGRID_HOST: '  ', TOKENGRID_ADMIN_KEY: '', TOKENGRID_PORT: '' }), parseEnv({}));
});

test('a bad value stops the start with a ConfigError naming the variable', () => {
  assert.throws(
    () => parseEnv({ TOKENGRID_PORT: 'eighty' }),
    (e) => e instanceof ConfigError && /TOKENGRID_PORT/.test(e.message),
  );
  assert.throws(() => parseEnv({ TOKENGRID_PORT: '70000' }), /TOKENGRID_PORT/);
  assert.throws(() => parseEnv({ TOKENGRID_LOG_LEVEL: 'loud' }), /TOKENGRID_LOG_LEVEL/);
  assert.throws(() => parseEnv({ TOKENGRID_ADMIN_KEY: 'admin123' }), /TOKENGRID_ADMIN_KEY is too short \(8 characters\): use at least 32/);
  assert.throws(() => parseEnv({ TOKENGRID_WEBHOOK_SECRET: 'short' }), /TOKENGRID_WEBHOOK_SECRET is too short/);
  assert.throws(() => parseEnv({ TOKENGRID_CARRIER_WEBHOOK_SECRET: 'short' }), /TOKENGRID_CARRIER_WEBHOOK_SECRET is too short/);
});

test('the lenient numbers keep their old meaning: anything but a positive value is the default', () => {
  for (const v of ['0', '-3', '2.5', 'many']) assert.equal(parseEnv({ TOKENGRID_AUTH_FAILURES_PER_MINUTE: v }).authFailuresPerMinute, 20, v);
  for (const v of ['0', '-1', 'forever']) assert.equal(parseEnv({ TOKENGRID_RESPONSE_TTL_DAYS: v }).responseTtlMs, undefined, v);
});

test('the webhook secret minimum is the one the webhook sender enforces', () => {
  assert.equal(ENV_WEBHOOK_SECRET_MIN_LENGTH, WEBHOOK_SECRET_MIN_LENGTH);
});
