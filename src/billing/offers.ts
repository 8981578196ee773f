/**
 * The offer catalog: parsed from YAML text (config/offers.yaml), validated with every error reported at once,
 * each with its path and line ("offers.ct-light.price (line 14): ..."). Loading the file and watching it are
 * the composition root's job; this module only turns text into an OfferCatalog (pure).
 */
import { LineCounter, parseDocument, isNode, type Document } from 'yaml';
import { z } from 'zod';
import { err, ok, parseDecimalMinor, type Result } from '../core/index.ts';
import type { ModelCatalog } from '../catalog/index.ts';
import { belowCostWarnings } from './price-check.ts';
import type { Offer, OfferCatalog, OfferType } from './types.ts';

const ID = /^[a-z0-9][a-z0-9-]{0,62}$/;
const MINOR_PER_MAJOR = 100;

/** "9.90", 9.9, "1,000.00" -> minor units. */
const money = z.union([z.string(), z.number()]).transform((v, ctx) => {
  const text = String(v).replace(/[,_]/g, '');
  const minor = parseDecimalMinor(text, MINOR_PER_MAJOR);
  if (minor === undefined || minor < 0) {
    ctx.addIssue({ code: 'custom', message: `expected an amount like "9.90" (at most 2 decimals, not negative), got ${JSON.stringify(v)}` });
    return z.NEVER;
  }
  return minor;
});

/** 10000000, "10_000_000", "18,000", "10M", "1.5M", "500K" -> integer. */
const quantity = z.union([z.string(), z.number()]).transform((v, ctx) => {
  const m = /^(\d+(?:\.\d+)?)([KMB]?)$/i.exec(String(v).replace(/[,_\s]/g, ''));
  const scale = { '': 1, K: 1e3, M: 1e6, B: 1e9 }[(m?.[2] ?? '').toUpperCase()] ?? 1;
  const n = m ? parseDecimalMinor(m[1]!, scale) : undefined;
  if (n === undefined || n <= 0 || !Number.isSafeInteger(n)) {
    ctx.addIssue({ code: 'custom', message: `expected a positive whole amount like 10000000, "10M" or "18,000", got ${JSON.stringify(v)}` });
    return z.NEVER;
  }
  return n;
});

const posInt = z.number().int().positive();
const OFFER_FIELDS = [
  'name',
  'description',
  'type',
  'price',
  'cycle',
  'validityDays',
  'allowance',
  'models',
  'rateLimits',
  'overage',
  'creditLimit',
  'payg',
  'qos',
  'regions',
  'trialOnce',
  'seats',
  'members',
  'feature',
  'renews',
  'appliesTo',
  'seatsAdded',
  'rollover',
  'channel',
  'status',
  'source',
  'assumed',
  'modelMap',
] as const;

const offerSchema = z
  .object({
    name: z.string().min(1).max(120),
    description: z.string().max(2000).default(''),
    type: z.enum(['plan', 'pack', 'trial', 'payg', 'addon']),
    price: money.optional(),
    cycle: z.enum(['month', 'year', 'day']).optional(),
    validityDays: posInt.max(3660).optional(),
    allowance: z.object({ tokens: quantity.optional(), requests: quantity.optional(), money: money.optional() }).strict().optional(),
    models: z.array(z.string().min(1)).min(1).nullable().default(null),
    modelMap: z.record(z.string().min(1).max(200), z.string().min(1).max(200)).optional(),
    rateLimits: z
      .object({ requestsPerMinute: posInt.optional(), tokensPerMinute: posInt.optional(), concurrentRequests: posInt.optional() })
      .strict()
      .default({}),
    overage: z.enum(['block', 'wallet', 'postpaid']).optional(),
    creditLimit: money.optional(),
    payg: z.object({ tokensPerYuan: quantity }).strict().optional(),
    qos: z.enum(['best_effort', 'standard', 'priority', 'dedicated']).default('standard'),
    regions: z.array(z.string().min(1).max(100)).min(1).optional(),
    trialOnce: z.boolean().optional(),
    seats: z.object({ min: posInt, max: posInt }).strict().optional(),
    members: posInt.max(1000).optional(),
    feature: z
      .string()
      .regex(/^[a-z][a-z0-9_]{0,40}$/, 'expected a feature name like security_pack')
      .optional(),
    renews: z.boolean().optional(),
    appliesTo: z.array(z.string()).min(1).optional(),
    seatsAdded: z.number().int().nonnegative().optional(),
    rollover: z.boolean().default(false),
    channel: z.enum(['wallet', 'phone_bill', 'external']).optional(),
    status: z.enum(['active', 'retired']).default('active'),
    source: z.string().max(500).optional(),
    assumed: z.array(z.enum(OFFER_FIELDS)).default([]),
  })
  .strict();

type RawOffer = z.infer<typeof offerSchema>;

const catalogSchema = z
  .object({
    version: z.union([z.string(), z.number()]).transform(String),
    currency: z
      .string()
      .regex(/^[A-Z]{3}$/, 'expected an ISO currency code like CNY')
      .default('CNY'),
    defaults: z
      .object({
        channel: z.enum(['wallet', 'phone_bill', 'external']).default('wallet'),
        overage: z.enum(['block', 'wallet', 'postpaid']).default('block'),
      })
      .strict()
      .default({ channel: 'wallet', overage: 'block' }),
    limits: z
      .object({ topupMax: money.default(500_000), codesPerBatchMax: posInt.max(100_000).default(10_000), phoneBillMonthly: money.default(20_000) })
      .strict()
      .default({ topupMax: 500_000, codesPerBatchMax: 10_000, phoneBillMonthly: 20_000 }),
    points: z
      .object({
        earnPerYuan: z.number().int().nonnegative().default(1),
        tokensPerPoint: posInt.default(1000),
        minRedeem: posInt.default(100),
        validityDays: posInt.default(30),
      })
      .strict()
      .default({ earnPerYuan: 1, tokensPerPoint: 1000, minRedeem: 100, validityDays: 30 }),
    offers: z
      .record(z.string().regex(ID, 'offer ids are lower-case letters, digits and dashes'), offerSchema)
      .refine((o) => Object.keys(o).length > 0, 'the catalog needs at least one offer'),
  })
  .strict();

export interface CatalogContext {
  /** Model ids, aliases and group names the engine knows; unknown names in `models` become warnings. */
  knownModels?: ReadonlySet<string>;
  /** Tokens (coins) the rating engine sells per major currency unit from wallets and postpaid lines. */
  walletCoinsPerUnit?: number;
  /** The model catalog (coin rates, vendor costs, groups): with it, prices that sell a model below cost are warnings. */
  models?: ModelCatalog;
}

type Problem = { path: (string | number)[]; message: string };

function crossCheck(id: string, o: RawOffer, all: Record<string, RawOffer>): Problem[] {
  const p: Problem[] = [];
  const at = (field: string, message: string): void => {
    p.push({ path: ['offers', id, field], message });
  };
  const allowanceUnits = o.allowance === undefined ? 0 : [o.allowance.tokens, o.allowance.requests, o.allowance.money].filter((x) => x !== undefined).length;
  if (o.allowance !== undefined && allowanceUnits !== 1) at('allowance', 'give exactly one of tokens, requests or money');
  const needs: Record<OfferType, { price: boolean; cycle: 'required' | 'forbidden'; validity: 'required' | 'optional' | 'forbidden' }> = {
    plan: { price: true, cycle: 'required', validity: 'forbidden' },
    pack: { price: true, cycle: 'forbidden', validity: 'required' },
    trial: { price: false, cycle: 'forbidden', validity: 'required' },
    payg: { price: false, cycle: 'forbidden', validity: 'forbidden' },
    addon: { price: true, cycle: 'forbidden', validity: 'optional' },
  };
  const n = needs[o.type];
  if (n.price && o.price === undefined) at('price', `a ${o.type} needs a price`);
  if (n.cycle === 'required' && o.cycle === undefined) at('cycle', 'a plan needs a cycle: month, year or day');
  if (n.cycle === 'forbidden' && o.cycle !== undefined) {
    at('cycle', o.type === 'addon' ? 'add-ons follow the cycle of their plan: remove cycle' : `a ${o.type} has no cycle: use validityDays`);
  }
  if (n.validity === 'required' && o.validityDays === undefined) at('validityDays', `a ${o.type} needs validityDays`);
  if (n.validity === 'forbidden' && o.validityDays !== undefined) at('validityDays', `a ${o.type} has no validityDays`);
  if (o.type === 'payg' && o.allowance !== undefined) at('allowance', 'pay-as-you-go has no allowance');
  if (o.type === 'payg' && o.payg === undefined) at('payg', 'pay-as-you-go needs payg.tokensPerYuan');
  if (o.type !== 'payg' && o.payg !== undefined) at('payg', 'only pay-as-you-go offers have a payg rate');
  if (o.type === 'trial' && (o.price ?? 0) !== 0) at('price', 'a trial is free: price must be 0');
  if (o.type !== 'plan' && o.seats !== undefined) at('seats', 'only plans have seats (sell extra seats as an add-on with feature: seat)');
  if (o.seats !== undefined && o.seats.min > o.seats.max) at('seats', 'seats.min is larger than seats.max');
  if (o.type !== 'plan' && o.members !== undefined) at('members', 'only plans have members');
  if (o.regions !== undefined && o.type !== 'plan' && o.type !== 'payg') at('regions', 'only plans and pay-as-you-go offers pin regions (data residency)');
  if (o.type !== 'addon') {
    for (const f of ['feature', 'renews', 'appliesTo', 'seatsAdded'] as const) if (o[f] !== undefined) at(f, `only add-ons have ${f}`);
  }
  if (o.type === 'addon' && o.allowance === undefined && o.feature === undefined) at('feature', 'an add-on without allowance needs a feature');
  if (o.feature === 'seat' && o.renews === false) at('renews', 'extra seats renew with the plan');
  if (o.allowance?.money !== undefined && o.type !== 'pack' && o.type !== 'plan')
    at('allowance', 'money allowances are for packs (recharge cards) and credit plans');
  for (const ref of o.appliesTo ?? []) {
    if (all[ref] === undefined) at('appliesTo', `unknown offer ${ref}`);
    else if (all[ref].type !== 'plan') at('appliesTo', `${ref} is a ${all[ref].type}, not a plan`);
  }
  if (o.overage === 'postpaid' && o.creditLimit === undefined) at('creditLimit', 'postpaid overage needs a creditLimit');
  for (const f of o.assumed) if (o[f as keyof RawOffer] === undefined && f !== 'price') at('assumed', `${f} is marked assumed but not set`);
  return p;
}

function toOffer(id: string, o: RawOffer, currency: string, defaults: { channel: Offer['channel']; overage: Offer['overage'] }): Offer {
  const a = o.allowance;
  const allowance =
    a === undefined
      ? null
      : a.tokens !== undefined
        ? { unit: 'tokens' as const, amount: a.tokens }
        : a.requests !== undefined
          ? { unit: 'requests' as const, amount: a.requests }
          : { unit: 'money' as const, amount: a.money ?? 0 };
  return {
    id,
    name: o.name,
    description: o.description,
    type: o.type,
    priceMinor: o.price ?? 0,
    currency,
    cycle: o.cycle ?? null,
    validityDays: o.validityDays ?? (o.type === 'addon' ? 30 : null),
    allowance,
    models: o.models,
    rateLimits: o.rateLimits,
    overage: o.overage ?? (o.type === 'payg' ? 'postpaid' : defaults.overage),
    creditLimitMinor: o.creditLimit ?? 0,
    paygTokensPerUnit: o.payg?.tokensPerYuan ?? null,
    qos: o.qos,
    trialOnce: o.trialOnce ?? o.type === 'trial',
    seats: o.seats ?? null,
    members: o.members ?? null,
    feature: o.feature ?? (o.type === 'addon' && allowance !== null ? 'tokens' : null),
    renews: o.renews ?? o.feature === 'seat',
    appliesTo: o.appliesTo ?? null,
    seatsAdded: o.seatsAdded ?? (o.feature === 'seat' ? 1 : 0),
    rollover: o.rollover,
    channel: o.channel ?? defaults.channel,
    status: o.status,
    source: o.source ?? null,
    assumed: o.assumed,
    ...(o.modelMap !== undefined ? { modelMap: o.modelMap } : {}),
    ...(o.regions !== undefined ? { regions: o.regions } : {}),
  };
}

function lineOf(doc: Document, lc: LineCounter, path: (string | number)[]): number | null {
  for (let n = path.length; n >= 0; n--) {
    const node = doc.getIn(path.slice(0, n), true);
    if (isNode(node) && node.range) return lc.linePos(node.range[0]).line;
  }
  return null;
}

function render(doc: Document, lc: LineCounter, problems: Problem[]): string[] {
  return problems.map((p) => {
    const line = lineOf(doc, lc, p.path);
    const where = p.path.length === 0 ? '(top level)' : p.path.join('.');
    return `${where}${line === null ? '' : ` (line ${line})`}: ${p.message}`;
  });
}

/** Parse and validate catalog text. The error's details.errors lists every problem, one line each. */
export function parseOfferCatalog(text: string, ctx: CatalogContext = {}): Result<OfferCatalog, 'invalid'> {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const errors = doc.errors.map((e) => `line ${lc.linePos(e.pos[0]).line}: ${e.message.split('\n')[0]}`);
    return err('invalid', `The offer catalog is not valid YAML:\n${errors.join('\n')}`, { errors });
  }
  const parsed = catalogSchema.safeParse(doc.toJS());
  if (!parsed.success) {
    const errors = render(
      doc,
      lc,
      parsed.error.issues.map((i) => ({
        path: i.path.map((x) => (typeof x === 'symbol' ? String(x) : x)),
        message:
          i.code === 'unrecognized_keys'
            ? `unknown field ${i.keys.map((k) => `"${k}"`).join(', ')}`
            : i.code === 'invalid_key'
              ? `bad id: ${i.issues[0]?.message ?? i.message}`
              : i.message,
      })),
    );
    return err('invalid', `The offer catalog has ${errors.length} error(s):\n${errors.join('\n')}`, { errors });
  }
  const c = parsed.data;
  const problems = Object.entries(c.offers).flatMap(([id, o]) => crossCheck(id, o, c.offers));
  if (problems.length > 0) {
    const errors = render(doc, lc, problems);
    return err('invalid', `The offer catalog has ${errors.length} error(s):\n${errors.join('\n')}`, { errors });
  }
  const offers = new Map<string, Offer>();
  const warnings: string[] = [];
  for (const [id, raw] of Object.entries(c.offers)) {
    const o = toOffer(id, raw, c.currency, c.defaults);
    offers.set(id, o);
    for (const m of o.models ?? []) {
      if (ctx.knownModels !== undefined && !ctx.knownModels.has(m)) warnings.push(`offers.${id}.models: no model or group named ${m} in the model catalog`);
    }
  }
  // Prices per offer: a pay-as-you-go offer's own price is what its subscribers pay (no warning when it differs from
  // the wallet price); what is checked is that no price sells a model below its vendor cost.
  if (ctx.models !== undefined) warnings.push(...belowCostWarnings(offers.values(), ctx.models, c.currency, ctx.walletCoinsPerUnit));
  return ok({
    version: c.version,
    currency: c.currency,
    offers,
    warnings,
    points: { earnPerUnit: c.points.earnPerYuan, tokensPerPoint: c.points.tokensPerPoint, minRedeem: c.points.minRedeem, validityDays: c.points.validityDays },
    limits: { topupMaxMinor: c.limits.topupMax, codesPerBatchMax: c.limits.codesPerBatchMax, phoneBillMonthlyMinor: c.limits.phoneBillMonthly },
  });
}

/** Holds the catalog in force; a reload that fails keeps the previous one (and says why). */
export class OfferCatalogHolder {
  #current: OfferCatalog;
  #lastError: string | null = null;
  constructor(initial: OfferCatalog) {
    this.#current = initial;
  }
  get current(): OfferCatalog {
    return this.#current;
  }
  get lastError(): string | null {
    return this.#lastError;
  }
  reload(text: string, ctx: CatalogContext = {}): Result<OfferCatalog, 'invalid'> {
    const r = parseOfferCatalog(text, ctx);
    if (r.ok) {
      this.#current = r.value;
      this.#lastError = null;
    } else {
      this.#lastError = r.message;
    }
    return r;
  }
}
