import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { buildCatalog, type Deployment, type ModelCatalog, type ModelSpec, type Ratio } from '../catalog/index.ts';
import type { ProviderConfig } from '../providers/index.ts';
import type { z } from 'zod';
import { configSchema, formatIssues, type FileConfig, type qosLimitSchema } from './schema.ts';

export interface ResolvedProvider extends ProviderConfig {
  /** 'mock' providers are bound to the in-process emulator's URL by the app. */
  mockDialect?: ProviderConfig['adapter'];
}

export interface RuntimeConfig {
  server: FileConfig['server'];
  dataDir: string;
  providers: Map<string, ResolvedProvider>;
  catalog: ModelCatalog;
  file: FileConfig;
  /** Where each model's traffic goes, for the startup log. */
  routingSummary: { model: string; providers: string[]; mock: boolean }[];
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

export const DEFAULT_CONFIG_PATH = resolve(import.meta.dirname, '../../config/tokengrid.yaml');

export function parseRatio(v: number | string | undefined, fallback: Ratio): Ratio {
  if (v === undefined) return fallback;
  if (typeof v === 'number') return { num: v, den: 1 };
  const [n, d] = v.split('/');
  return { num: Number(n), den: Number(d) };
}

const MOCK_FOR_ADAPTER: Record<string, string> = { 'openai-compatible': 'mock', anthropic: 'mock-anthropic', gemini: 'mock-gemini' };

export function loadConfigFile(path: string): FileConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ConfigError(`cannot read config file ${path}: ${(e as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (e) {
    throw new ConfigError(`config file ${path} is not valid YAML: ${(e as Error).message}`);
  }
  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) throw new ConfigError(`config file ${path} is invalid: ${formatIssues(parsed.error)}`);
  return parsed.data;
}

/**
 * Turn the file config plus the environment into the runtime view: providers whose key env var is unset are
 * disabled, and a model left without deployments is served by the mock provider of its vendor's dialect.
 */
export function resolveConfig(
  file: FileConfig,
  env: Readonly<Record<string, string | undefined>> = process.env,
  overrides: { host?: string; port?: number; dataDir?: string } = {},
): RuntimeConfig {
  const providers = new Map<string, ResolvedProvider>();
  for (const [name, p] of Object.entries(file.providers)) {
    if (p.adapter === 'mock') {
      const dialect = p.dialect ?? 'openai-compatible';
      providers.set(name, { name, adapter: dialect, baseUrl: '', label: `${name} (offline emulator)`, isMock: true, mockDialect: dialect });
      continue;
    }
    const apiKey = p.apiKey ?? (p.apiKeyEnv ? env[p.apiKeyEnv] : undefined);
    if (p.apiKeyEnv && !apiKey) continue; // vendor key absent: this provider is off
    if (!p.baseUrl) throw new ConfigError(`providers.${name}.baseUrl is required for adapter ${p.adapter}`);
    const rp: ResolvedProvider = { name, adapter: p.adapter, baseUrl: p.baseUrl.replace(/\/+$/, ''), label: p.label ?? name };
    if (apiKey) rp.apiKey = apiKey;
    if (p.headers) rp.headers = p.headers;
    providers.set(name, rp);
  }

  const models: ModelSpec[] = [];
  const summary: RuntimeConfig['routingSummary'] = [];
  const one: Ratio = { num: 1, den: 1 };
  for (const [id, m] of Object.entries(file.models)) {
    let deployments = m.deployments
      .filter((d) => providers.has(d.provider))
      .map((d) => {
        const upstreamModel = d.upstreamModel ?? id;
        const depId = `${d.provider}/${upstreamModel}@${d.region}`;
        return withQos({ id: depId, provider: d.provider, upstreamModel, region: d.region, weight: d.weight }, d.qos, file.providers[d.provider]?.qos);
      });
    let mock = false;
    if (deployments.length === 0) {
      const vendorAdapter = m.deployments.map((d) => file.providers[d.provider]?.adapter).find((a) => a && a !== 'mock') ?? 'openai-compatible';
      const mockName = MOCK_FOR_ADAPTER[vendorAdapter] ?? 'mock';
      if (!providers.has(mockName)) throw new ConfigError(`model ${id} has no enabled deployment and no '${mockName}' provider to fall back on`);
      deployments = [
        withQos({ id: `${mockName}/${id}@local`, provider: mockName, upstreamModel: id, region: 'local', weight: 1 }, undefined, file.providers[mockName]?.qos),
      ];
      mock = true;
    }
    summary.push({ model: id, providers: [...new Set(deployments.map((d) => d.provider))], mock });
    models.push({
      id,
      kind: m.kind,
      vendor: m.vendor,
      displayName: m.displayName ?? id,
      aliases: m.aliases,
      groups: m.groups,
      contextWindow: m.contextWindow,
      maxOutputTokens: m.maxOutputTokens,
      capabilities: m.capabilities,
      deployments,
      fallback: m.fallback,
      attemptsMax: m.attemptsMax,
      requestsPerCall: m.requestsPerCall,
      ...(m.tier === undefined ? {} : { tier: m.tier }),
      createdS: 1_767_225_600,
      cost: {
        currency: m.cost.currency,
        inputMicrosPerMillion: m.cost.input,
        outputMicrosPerMillion: m.cost.output,
        cachedInputMicrosPerMillion: m.cost.cachedInput ?? m.cost.input,
      },
      coins: {
        input: parseRatio(m.coins.input, one),
        output: parseRatio(m.coins.output, one),
        cachedInput: parseRatio(m.coins.cachedInput, parseRatio(m.coins.input, one)),
        reasoning: parseRatio(m.coins.reasoning, parseRatio(m.coins.output, one)),
        ...(m.coins.cacheWrite !== undefined ? { cacheWrite: parseRatio(m.coins.cacheWrite, parseRatio(m.coins.input, one)) } : {}),
      },
    });
  }
  for (const m of models) {
    for (const f of m.fallback) if (!file.models[f]) throw new ConfigError(`models.${m.id}.fallback names unknown model ${f}`);
    for (const a of m.aliases) if (file.models[a]) throw new ConfigError(`alias ${a} of ${m.id} collides with a model id`);
  }
  const server = { ...file.server };
  if (overrides.host !== undefined) server.host = overrides.host;
  if (overrides.port !== undefined) server.port = overrides.port;
  const fast = env.TOKENGRID_FAST_PATHS?.trim().toLowerCase();
  if (fast !== undefined && fast !== '') {
    if (fast !== 'on' && fast !== 'off') throw new ConfigError(`TOKENGRID_FAST_PATHS must be on or off, not ${JSON.stringify(env.TOKENGRID_FAST_PATHS)}`);
    server.fastPaths = fast === 'on';
  }
  return {
    server,
    dataDir: resolve(overrides.dataDir ?? 'data'),
    providers,
    catalog: buildCatalog(`models-${models.length}`, models),
    file,
    routingSummary: summary,
  };
}

/** The package catalog shipped with TokenGrid. */
export const DEFAULT_OFFERS_PATH = resolve(import.meta.dirname, '../../config/offers.yaml');

/** Where the offers come from: TOKENGRID_OFFERS_FILE, else the file's catalog.offersFile (relative to the file), else the shipped one. */
export function resolveOffersFile(file: FileConfig, configPath: string, fromEnv: string | undefined): string {
  if (fromEnv !== undefined) return resolve(fromEnv);
  return file.catalog?.offersFile ? resolve(dirname(configPath), file.catalog.offersFile) : DEFAULT_OFFERS_PATH;
}

type FileQos = z.infer<typeof qosLimitSchema>;

/** A deployment's QoS pool: its own limit (keyed by its id), else its provider's (one pool per provider), else none. */
function withQos(d: Deployment, own: FileQos | undefined, byProvider: FileQos | undefined): Deployment {
  const q = own ?? byProvider;
  if (q === undefined) return d;
  return { ...d, qos: { key: own !== undefined ? d.id : `provider:${d.provider}`, ...q } };
}
