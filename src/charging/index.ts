export * from './types.ts';
export * from './store.ts';
export { createChargingEngine } from './engine.ts';
export { rateUsage, rateEstimate, pricedRate, validateRateTable, DEFAULT_CURRENCY, DEFAULT_MINOR_UNITS_PER_MAJOR } from './rate.ts';
export { compareBuckets, available, copyBucket, DEFAULT_PRIORITY } from './burn-down.ts';
export { cycleStartMs, cycleIndexAt } from './cycle.ts';
export { auditAccount, auditData, auditSchedules, RENEWAL_AUDIT_GRACE_MS, type AuditReport } from './audit.ts';
export { CLIENT_REF_PREFIX, clientRef } from './management.ts';
export * from './billing-ops.ts';
