/** The model catalog: the ids clients use, mapped to deployments (provider + upstream model + region + weight). */

export interface Deployment {
  /** Stable id: `${provider}/${upstreamModel}@${region}`. */
  id: string;
  provider: string;
  upstreamModel: string;
  region: string;
  weight: number;
  /** Concurrency limit and queue of the upstream this deployment runs on (config `qos`); absent: unlimited. */
  qos?: DeploymentQos;
}

/** One upstream pool (the QoS stage schedules on it): `key` is the deployment id, or `provider:<name>` when shared. */
export interface DeploymentQos {
  key: string;
  maxConcurrent: number;
  queueMax: number;
  queueTimeoutMs: number;
  reservedForPriority: number;
}

export type ModelKind = 'chat' | 'embedding';
export type Capability = 'tools' | 'vision' | 'reasoning' | 'json' | 'completions';

/** Vendor cost: what the upstream vendor charges us, in micro-CNY per million tokens (for settlement and margins). */
export interface VendorCost {
  currency: string;
  inputMicrosPerMillion: number;
  outputMicrosPerMillion: number;
  cachedInputMicrosPerMillion: number;
}

/** Token-coin multipliers as rationals: 1 coin = 1 token of the reference model. */
export interface Ratio {
  num: number;
  den: number;
}
export interface CoinRates {
  input: Ratio;
  output: Ratio;
  cachedInput: Ratio;
  reasoning: Ratio;
  /** Input tokens written to the vendor's prompt cache (Anthropic cache_creation); default: the input rate. */
  cacheWrite?: Ratio;
}

export interface ModelSpec {
  id: string;
  kind: ModelKind;
  /** Who makes the model (deepseek, zhipu, qwen, ...). */
  vendor: string;
  displayName: string;
  aliases: string[];
  groups: string[];
  contextWindow: number;
  maxOutputTokens: number;
  capabilities: Capability[];
  /** Deployments after provider availability was applied (vendor keys present, else the mock). */
  deployments: Deployment[];
  /** Model ids to try when every deployment of this one failed before the first byte. */
  fallback: string[];
  /** Attempts per request in total, across deployments and fallbacks. */
  attemptsMax: number;
  cost: VendorCost;
  coins: CoinRates;
  /** Charge per request on request-count plans (in requests). */
  requestsPerCall: number;
  createdS: number;
  /** Quality tier for `model: "auto"` (1 = basic .. 3 = best); without one the model is not an auto candidate. */
  tier?: number;
}

export interface ModelCatalog {
  version: string;
  models: ReadonlyMap<string, ModelSpec>;
  /** alias -> model id */
  aliases: ReadonlyMap<string, string>;
  groups: ReadonlyMap<string, readonly string[]>;
}

export type ResolveResult = { ok: true; model: ModelSpec } | { ok: false; code: 'model_not_found'; message: string };

/**
 * A package's model mapping (an offer's `modelMap`): requested id or glob (`*` matches any run of
 * characters) -> catalog model id or alias, e.g. { "claude-*": "glm-5" }. Exact keys win over globs;
 * globs are tried in the order written.
 */
export type ModelMap = Readonly<Record<string, string>>;

/** Context-size suffixes agents put on vendor ids (Claude Code's `claude-opus-4-8[1m]`) are not part of the id. */
export function stripModelSuffix(requested: string): string {
  return requested.endsWith(']') && requested.includes('[') ? requested.slice(0, requested.lastIndexOf('[')) : requested;
}

/** The target a package's mapping gives a requested id, or undefined. */
export function mappedModelId(map: ModelMap | undefined, requested: string): string | undefined {
  if (map === undefined) return undefined;
  if (Object.hasOwn(map, requested)) return map[requested];
  for (const [pattern, target] of Object.entries(map)) {
    if (!pattern.includes('*')) continue;
    const re = new RegExp(
      `^${pattern
        .split('*')
        .map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
        .join('.*')}$`,
    );
    if (re.test(requested)) return target;
  }
  return undefined;
}

export function resolveModel(catalog: ModelCatalog, requested: string, map?: ModelMap): ResolveResult {
  const id = stripModelSuffix(requested);
  const mapped = map === undefined ? undefined : mappedModelId(map, id);
  const model = (mapped === undefined ? undefined : lookup(catalog, mapped)) ?? lookup(catalog, id);
  if (model) return { ok: true, model };
  return { ok: false, code: 'model_not_found', message: `The model '${requested}' does not exist. GET /v1/models lists the models this key may use.` };
}

function lookup(catalog: ModelCatalog, id: string): ModelSpec | undefined {
  const direct = catalog.models.get(id);
  if (direct) return direct;
  const aliased = catalog.aliases.get(id);
  return aliased === undefined ? undefined : catalog.models.get(aliased);
}

/** Whether a key's allow-list (model ids, aliases, `group:<name>`, or `*`) admits the model. null = all models. */
export function isModelAllowed(catalog: ModelCatalog, allowed: readonly string[] | null, model: ModelSpec): boolean {
  if (allowed === null) return true;
  for (const entry of allowed) {
    if (entry === '*' || entry === model.id) return true;
    if (entry.startsWith('group:') && model.groups.includes(entry.slice(6))) return true;
    if (catalog.aliases.get(entry) === model.id) return true;
  }
  return false;
}

export function buildCatalog(version: string, models: ModelSpec[]): ModelCatalog {
  const byId = new Map<string, ModelSpec>();
  const aliases = new Map<string, string>();
  const groups = new Map<string, string[]>();
  for (const m of models) {
    byId.set(m.id, m);
    for (const a of m.aliases) aliases.set(a, m.id);
    for (const g of m.groups) {
      const list = groups.get(g) ?? [];
      list.push(m.id);
      groups.set(g, list);
    }
  }
  return { version, models: byId, aliases, groups };
}
