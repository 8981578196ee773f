/** Billing periods (calendar months, UTC), cycle windows and proration (pure integer arithmetic). */
import { mulDiv } from '../core/index.ts';
import { cycleIndexAt, cycleStartMs, type CycleUnit } from '../charging/index.ts';

const PERIOD = /^(\d{4})-(0[1-9]|1[0-2])$/;

export interface Period {
  period: string;
  startMs: number;
  endMs: number;
}

export function parsePeriod(text: string): Period | undefined {
  const m = PERIOD.exec(text);
  if (!m) return undefined;
  const year = Number(m[1]);
  const month0 = Number(m[2]) - 1;
  return { period: text, startMs: Date.UTC(year, month0, 1), endMs: Date.UTC(year, month0 + 1, 1) };
}

export function periodOf(ms: number): string {
  return new Date(ms).toISOString().slice(0, 7);
}

export function periodContaining(ms: number): Period {
  return parsePeriod(periodOf(ms))!;
}

export interface CycleWindow {
  index: number;
  startMs: number;
  endMs: number;
}

export function cycleAt(anchorMs: number, cycle: CycleUnit, atMs: number): CycleWindow {
  const index = Math.max(0, cycleIndexAt(anchorMs, cycle, atMs));
  return cycleWindow(anchorMs, cycle, index);
}

export function cycleWindow(anchorMs: number, cycle: CycleUnit, index: number): CycleWindow {
  return { index, startMs: cycleStartMs(anchorMs, cycle, index), endMs: cycleStartMs(anchorMs, cycle, index + 1) };
}

/**
 * Whether a schedule anchored at cycle `index`'s start renews on the same dates as one anchored at `anchorMs`.
 * Not so when that start was clamped (anchor on the 31st landing on Feb 28): re-anchoring there would move every
 * later renewal to the 28th.
 */
export function reAnchorable(anchorMs: number, cycle: CycleUnit, index: number): boolean {
  if (cycle === 'day') return true;
  const a = new Date(anchorMs);
  const s = new Date(cycleStartMs(anchorMs, cycle, index));
  return a.getUTCDate() === s.getUTCDate() && (cycle === 'month' || a.getUTCMonth() === s.getUTCMonth());
}

/** The share of `amount` for the rest of a window: amount x remaining / length, rounded as asked. */
export function prorate(amount: number, w: CycleWindow, atMs: number, rounding: 'ceil' | 'floor'): number {
  const remaining = Math.max(0, Math.min(w.endMs, w.endMs - atMs));
  const length = w.endMs - w.startMs;
  return mulDiv(amount, Math.min(remaining, length), length, rounding);
}

export const DAY_MS = 86_400_000;
export const isoDay = (ms: number): string => new Date(ms).toISOString().slice(0, 10);
export const iso = (ms: number | null | undefined): string | null => (ms === null || ms === undefined ? null : new Date(ms).toISOString());
