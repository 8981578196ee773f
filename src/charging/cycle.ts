/**
 * Cycle arithmetic in UTC. A monthly cycle keeps the anchor's day of month, clamped to the month's last day
 * (anchor Jan 31 -> Feb 28/29 -> Mar 31); a yearly cycle anchored on Feb 29 renews on Feb 28 in common years.
 */
import { assert } from '../core/index.ts';
import type { CycleUnit } from './types.ts';

const DAY_MS = 86_400_000;

function daysInMonth(year: number, month0: number): number {
  return new Date(Date.UTC(year, month0 + 1, 0)).getUTCDate();
}

function addMonthsClamped(anchorMs: number, months: number): number {
  const a = new Date(anchorMs);
  const total = a.getUTCFullYear() * 12 + a.getUTCMonth() + months;
  const year = Math.floor(total / 12);
  const month0 = total - year * 12;
  const day = Math.min(a.getUTCDate(), daysInMonth(year, month0));
  const timeOfDayMs = anchorMs - Date.UTC(a.getUTCFullYear(), a.getUTCMonth(), a.getUTCDate());
  return Date.UTC(year, month0, day) + timeOfDayMs;
}

/** Start of cycle `index` (index 0 starts at the anchor). */
export function cycleStartMs(anchorMs: number, cycle: CycleUnit, index: number): number {
  assert(Number.isSafeInteger(index), 'cycle index must be an integer');
  if (cycle === 'day') return anchorMs + index * DAY_MS;
  return addMonthsClamped(anchorMs, cycle === 'month' ? index : index * 12);
}

/** The cycle containing `atMs`: the largest index whose start is <= atMs (negative before the anchor). */
export function cycleIndexAt(anchorMs: number, cycle: CycleUnit, atMs: number): number {
  if (cycle === 'day') return Math.floor((atMs - anchorMs) / DAY_MS);
  const a = new Date(anchorMs);
  const t = new Date(atMs);
  const months = (t.getUTCFullYear() - a.getUTCFullYear()) * 12 + (t.getUTCMonth() - a.getUTCMonth());
  let index = cycle === 'month' ? months : Math.floor(months / 12);
  // The month estimate is off by at most one in either direction; settle it exactly.
  while (cycleStartMs(anchorMs, cycle, index) > atMs) index--;
  while (cycleStartMs(anchorMs, cycle, index + 1) <= atMs) index++;
  return index;
}
