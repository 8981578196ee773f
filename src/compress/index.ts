export * from './apply.ts';
export * from './plan.ts';
