export * from './health.ts';
export * from './plan.ts';
export * from './auto.ts';
