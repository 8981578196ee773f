export * from './clock.ts';
export * from './random.ts';
export * from './ids.ts';
export * from './result.ts';
export * from './assert.ts';
export * from './int.ts';
export * from './hash.ts';
export * from './error-codes.ts';
