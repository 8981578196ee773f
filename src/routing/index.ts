export * from './health.ts';
export * from './plan.ts';
