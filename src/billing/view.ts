/**
 * Load: what a billing plan is decided on (issue 14 item 1, "billing as decide/apply"). `loadView` is the one
 * place that reads the stores for planning; the planners (planners/*.ts) are pure functions over the view it
 * returns, and `BillingStore.apply` writes what they decide in one transaction. The account's billing version is
 * read first, so everything read after it is covered by the plan's precondition.
 */
import type { Account } from '../accounts/index.ts';
import type { BucketBalance, UsageRecord } from '../charging/index.ts';
import type { Ctx, PlannerRules } from './context.ts';
import type { Bill, CodeBatch, CodeRecord, OfferCatalog, Order, Payment, PointsEntry, Subscription } from './types.ts';

/** What a plan reads beyond the account's own billing rows and buckets. */
export interface LoadNeeds {
  /** The account's enterprise tree (its top account and every sub-account) with their subscriptions: trials are once per tree. */
  tree?: boolean;
  /** Mint the charging engine's due cycles before the buckets are read (plan changes and add-ons read this cycle's allowance). */
  mintCycles?: boolean;
  /** The account's member count (seat plans). */
  members?: boolean;
  /** Whether the account has a phone-bill channel (orders; not at start-up, when the channel is not wired yet). */
  phoneBill?: boolean;
  /** A redemption code (by hash) and its batch. */
  codeHash?: string;
  /**
   * false: the account's orders, payments, points and bills are not loaded (a catch-up before a read, a carrier
   * answer: they need the subscriptions and buckets only); the sheet refuses to read them. Default true.
   */
  history?: boolean;
  /** The account's usage records settled in [fromMs, toMs) (a bill). */
  usage?: { fromMs: number; toMs: number };
}

/** Everything one account's order is planned from: a snapshot, never re-read while the plan is made. */
export interface BillingView {
  /** The account the plan charges, or null for a plan on no account (a code batch). */
  accountId: string | null;
  /** The clock's now for the whole plan. */
  nowMs: number;
  catalog: OfferCatalog;
  rules: PlannerRules;
  /** The billing version of every account loaded: the plan's preconditions (apply refuses if one moved). */
  versions: { accountId: string; version: number }[];
  account: Account | undefined;
  /** The account has a phone-bill channel (a linked phone, a carrier arrangement). */
  phoneBillChannel: boolean;
  memberCount: number;
  /** The enterprise tree, top account first (needs.tree; else just the account). */
  tree: string[];
  /** Every subscription of the accounts loaded (the account, and the tree with needs.tree). */
  subscriptions: Subscription[];
  /** Whether orders, payments, points and bills were loaded (needs.history). */
  history: boolean;
  /** The account's orders, payments, points entries and bills. */
  orders: Order[];
  payments: Payment[];
  points: PointsEntry[];
  bills: Bill[];
  /** The account's charging buckets (wallet, allowances, credit line) as charging reports them. */
  buckets: BucketBalance[];
  usage: UsageRecord[];
  code: CodeRecord | undefined;
  codeBatch: CodeBatch | undefined;
}

async function enterpriseTree(ctx: Ctx, accountId: string): Promise<string[]> {
  let top = accountId;
  const seen = new Set<string>([top]);
  for (let a = await ctx.deps.accounts.getAccount(top); a?.parentId != null && !seen.has(a.parentId); a = await ctx.deps.accounts.getAccount(top)) {
    top = a.parentId;
    seen.add(top);
  }
  const tree: string[] = [];
  const queue = [top];
  while (queue.length > 0) {
    const id = queue.shift()!;
    if (tree.includes(id)) continue;
    tree.push(id);
    for (const child of await ctx.deps.accounts.listAccounts({ parentId: id })) queue.push(child.id);
  }
  return tree;
}

/** An empty view at now (a plan on no account, and the base of test views). */
export function emptyView(nowMs: number, catalog: OfferCatalog, rules: PlannerRules, accountId: string | null = null): BillingView {
  return {
    accountId,
    nowMs,
    catalog,
    rules,
    versions: [],
    account: undefined,
    phoneBillChannel: false,
    memberCount: 0,
    tree: accountId === null ? [] : [accountId],
    history: true,
    subscriptions: [],
    orders: [],
    payments: [],
    points: [],
    bills: [],
    buckets: [],
    usage: [],
    code: undefined,
    codeBatch: undefined,
  };
}

/** Read everything a plan for `accountId` (null: no account) needs. The only read of the planning path. */
export async function loadView(ctx: Ctx, accountId: string | null, needs: LoadNeeds = {}): Promise<BillingView> {
  const { store, charging, accounts } = ctx.deps;
  const view = emptyView(ctx.now(), ctx.catalog(), ctx.rules, accountId);
  if (needs.codeHash !== undefined) {
    view.code = await store.getCode(needs.codeHash);
    if (view.code !== undefined) view.codeBatch = await store.getCodeBatch(view.code.batchId);
  }
  if (accountId === null) return view;
  const tree = needs.tree ? await enterpriseTree(ctx, accountId) : [accountId];
  view.tree = tree;
  for (const a of [accountId, ...tree.filter((x) => x !== accountId)]) view.versions.push({ accountId: a, version: await store.accountVersion(a) });
  view.account = await accounts.getAccount(accountId);
  if (needs.phoneBill) view.phoneBillChannel = ctx.deps.phoneBillChannel?.(accountId) === true;
  if (needs.members) view.memberCount = (await accounts.listMembers(accountId)).length;
  for (const a of tree) view.subscriptions.push(...(await store.listSubscriptions({ accountId: a })));
  view.history = needs.history !== false;
  if (view.history) {
    view.orders = await store.listOrders({ accountId });
    view.payments = await store.listPayments({ accountId });
    view.points = await store.listPoints(accountId);
    view.bills = await store.listBills({ accountId });
  }
  if (needs.mintCycles) await charging.renewDue();
  view.buckets = await charging.listBuckets(accountId);
  if (needs.usage !== undefined) view.usage = await charging.listUsage(accountId, needs.usage);
  return view;
}
