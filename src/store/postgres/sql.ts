/**
 * Literals for the multi-statement texts of the hot path. A reserve or settle sends its whole write (and its
 * COMMIT) as one simple-protocol query, which takes no parameters, so values are written as literals here:
 * strings through pg's escapeLiteral, numbers only when they are safe integers, JSON as an escaped jsonb literal.
 */
import pg from 'pg';

export function str(s: string): string {
  return pg.escapeLiteral(s);
}

export function strOrNull(s: string | null | undefined): string {
  return s === null || s === undefined ? 'NULL' : pg.escapeLiteral(s);
}

export function int(n: number): string {
  if (!Number.isSafeInteger(n)) throw new Error(`not a safe integer: ${n}`);
  return String(n);
}

export function intOrNull(n: number | null | undefined): string {
  return n === null || n === undefined ? 'NULL' : int(n);
}

export function bool(b: boolean): string {
  return b ? 'true' : 'false';
}

export function json(v: unknown): string {
  return `${pg.escapeLiteral(JSON.stringify(v))}::jsonb`;
}

export function jsonOrNull(v: unknown): string {
  return v === null || v === undefined ? 'NULL' : json(v);
}
