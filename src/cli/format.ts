import { formatMinor } from '../core/index.ts';

/**
 * Human output in plain terms: people understand "12.3M of 30M tokens left, expires 2026-12-25", not
 * "remaining: 12345678". Every function here is pure and takes `nowMs` where time matters.
 */

const ZERO_DECIMAL_CURRENCIES = new Set(['JPY', 'KRW', 'VND', 'CLP', 'ISK']);

/** Minor units per major unit: 100 fen per yuan; 1 for currencies without decimals. */
export function minorScale(currency: string): number {
  return ZERO_DECIMAL_CURRENCIES.has(currency.toUpperCase()) ? 1 : 100;
}

export function formatMoney(minor: number, currency: string | null | undefined): string {
  const cur = currency ?? 'CNY';
  return `${formatMinor(minor, minorScale(cur))} ${cur}`;
}

const TOKEN_UNITS: [number, string][] = [
  [1e12, 'T'],
  [1e9, 'B'],
  [1e6, 'M'],
  [1e3, 'K'],
];

/**
 * 12_345_678 -> "12.3M", 30_000_000 -> "30M", 950 -> "950". Rounds DOWN: a balance must never look
 * larger than it is ("30M left" when 29.99M are left would be a small lie).
 */
export function formatTokens(n: number): string {
  const sign = n < 0 ? '-' : '';
  const abs = Math.abs(n);
  for (const [size, suffix] of TOKEN_UNITS) {
    if (abs < size) continue;
    // Integer tenths first, so float noise cannot turn 29.9 into 29.899999.
    const tenths = Math.floor((abs * 10) / size);
    const shown = tenths >= 1000 ? Math.floor(tenths / 10) : tenths / 10;
    return `${sign}${shown}${suffix}`;
  }
  return `${sign}${abs}`;
}

/** 18000 -> "18,000". */
export function formatCount(n: number): string {
  return n.toLocaleString('en-US');
}

/** An ISO instant as a day ("2026-12-25") when it is midnight UTC, else day and minute in UTC. */
export function formatWhen(iso: string | null | undefined): string {
  if (!iso) return '-';
  const ms = Date.parse(iso);
  if (!Number.isFinite(ms)) return iso;
  const s = new Date(ms).toISOString();
  const day = s.slice(0, 10);
  const time = s.slice(11, 16);
  return time === '00:00' ? day : `${day} ${time} UTC`;
}

/** Columns padded to the widest cell; the last column is not padded (no trailing blanks). */
export function formatTable(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(headers), ...rows.map(line)].join('\n');
}

/** `key: value` lines for an object whose shape the CLI does not know in detail. */
export function formatRecord(obj: Record<string, unknown>, skip: string[] = []): string {
  const entries = Object.entries(obj).filter(([k, v]) => !skip.includes(k) && v !== undefined && (typeof v !== 'object' || v === null));
  const width = Math.max(0, ...entries.map(([k]) => k.length));
  return entries.map(([k, v]) => `${`${k}:`.padEnd(width + 2)}${v === null ? '-' : String(v)}`).join('\n');
}

/** RFC 4180 CSV: fields with commas, quotes or line breaks are quoted, quotes doubled. */
export function toCsv(headers: string[], rows: unknown[][]): string {
  const cell = (v: unknown): string => {
    const s = v === null || v === undefined ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v);
    return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  };
  return [headers, ...rows].map((r) => r.map(cell).join(',')).join('\r\n') + '\r\n';
}

/** The balance route's bucket view (src/api/admin/charging.ts bucketView). */
export interface BucketView {
  id: string;
  unit: 'tokens' | 'requests' | 'money';
  currency: string | null;
  kind: string;
  memberId: string | null;
  granted: number;
  used: number;
  reserved: number;
  remaining: number;
  effectiveAt: string | null;
  expiresAt: string | null;
  expired: boolean;
  models: string[] | null;
}

const KIND_LABELS: Record<string, string> = {
  plan_allowance: 'plan allowance',
  addon: 'add-on',
  trial: 'trial',
  wallet: 'wallet',
  points: 'points',
  code: 'code',
  manual: 'manual grant',
  postpaid_line: 'credit line',
};

export const bucketKindLabel = (kind: string): string => KIND_LABELS[kind] ?? kind;

function amountOf(b: BucketView, n: number): string {
  if (b.unit === 'money') return formatMoney(n, b.currency);
  if (b.unit === 'requests') return `${formatCount(n)} requests`;
  return `${formatTokens(n)} tokens`;
}

function leftPhrase(b: BucketView): string {
  if (b.kind === 'wallet') return `${amountOf(b, b.remaining)} left`;
  // A postpaid line grants nothing: its credit limit is what is owed so far plus what is left.
  if (b.kind === 'postpaid_line')
    return `${amountOf(b, b.used + b.reserved)} owed on the phone bill, ${amountOf(b, b.remaining)} of ${amountOf(b, b.used + b.reserved + b.remaining)} credit left`;
  if (b.unit === 'tokens') return `${formatTokens(b.remaining)} of ${formatTokens(b.granted)} tokens left`;
  return `${amountOf(b, b.remaining)} of ${amountOf(b, b.granted)} left`;
}

function validityPhrase(b: BucketView, nowMs: number): string | undefined {
  if (b.expired) return `expired ${formatWhen(b.expiresAt)}`;
  if (b.effectiveAt && Date.parse(b.effectiveAt) > nowMs) return `starts ${formatWhen(b.effectiveAt)}`;
  if (b.expiresAt) return `expires ${formatWhen(b.expiresAt)}`;
  return b.kind === 'wallet' ? undefined : 'never expires';
}

/** "12.3M of 30M tokens left, expires 2026-12-25, 200K held by requests in flight". */
export function describeBucket(b: BucketView, nowMs: number): string {
  const parts = [leftPhrase(b)];
  const validity = validityPhrase(b, nowMs);
  if (validity) parts.push(validity);
  if (b.reserved > 0) parts.push(`${amountOf(b, b.reserved)} held by requests in flight`);
  if (b.models && b.models.length > 0) parts.push(`only for ${b.models.join(', ')}`);
  if (b.memberId) parts.push(`member ${b.memberId}`);
  return parts.join(', ');
}

/** What can be spent now, per unit: "12.3M tokens and 8.50 CNY". */
export function spendableSummary(buckets: BucketView[], nowMs: number): string {
  const totals = new Map<string, { b: BucketView; n: number }>();
  for (const b of buckets) {
    if (b.expired || (b.effectiveAt && Date.parse(b.effectiveAt) > nowMs) || b.remaining <= 0) continue;
    const key = b.unit === 'money' ? `money:${b.currency ?? 'CNY'}` : b.unit;
    const t = totals.get(key);
    if (t) t.n += b.remaining;
    else totals.set(key, { b, n: b.remaining });
  }
  if (totals.size === 0) return 'nothing';
  return [...totals.values()].map(({ b, n }) => amountOf(b, n)).join(' and ');
}
