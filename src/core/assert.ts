export class AssertionError extends Error {
  override name = 'AssertionError';
}

/** Invariant check: a failure is a bug, never an expected outcome. */
export function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new AssertionError(message);
}
