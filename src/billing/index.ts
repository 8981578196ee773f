export * from './types.ts';
export * from './store.ts';
export { parseOfferCatalog, OfferCatalogHolder, type CatalogContext } from './offers.ts';
export { createBillingService, type BillingService } from './service.ts';
export type { BillingDeps, BillingErrorCode, BR } from './context.ts';
export type { Outcome } from './plan.ts';
export { fmtMoney } from './context.ts';
export { ADMIN_KEY_PREFIX, AdminKeyRegistry, type AdminKeyIdentity } from './admin-keys.ts';
export {
  fileExportChannel,
  webhookChannel,
  signWebhook,
  carrierCsv,
  type CarrierChannel,
  type CarrierCharge,
  type CarrierResult,
  type HttpPost,
} from './carrier.ts';
export { billCsv, type BillRunResult } from './bills.ts';
export { normalizeCode, formatCode, hashCode } from './codes.ts';
export { parsePeriod, periodOf, type Period } from './periods.ts';
export { offerOfSourceRef, microsToMinor, type SettlementReport, type MarginRow } from './reports.ts';
export { plainAmount, type Entitlements } from './views.ts';
export type { RenewalRun, RenewalRunFailure } from './renew.ts';
export { belowCostWarnings, modelsPaidFor } from './price-check.ts';
