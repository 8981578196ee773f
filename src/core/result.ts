/** Expected outcomes are values; exceptions are for bugs and broken infrastructure. */
export type Ok<T> = { ok: true; value: T };
export type Err<C extends string = string> = { ok: false; code: C; message: string; details?: Record<string, unknown> };
export type Result<T, C extends string = string> = Ok<T> | Err<C>;

export const ok = <T>(value: T): Ok<T> => ({ ok: true, value });
export const err = <C extends string>(code: C, message: string, details?: Record<string, unknown>): Err<C> =>
  details === undefined ? { ok: false, code, message } : { ok: false, code, message, details };
