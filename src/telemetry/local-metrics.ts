import type { Metric, Registry } from 'prom-client';

/**
 * Counters and histograms for the per-request metrics, kept in plain numbers. The hot path bumps a cell that
 * it looked up once per label set; prom-client's own inc/observe build a label-hash string (and validate the
 * labels) on every call, which was about 1 kB of garbage and 1.5 % of the CPU of a request. The registry
 * reads the cells at scrape time: each metric is registered as a custom prom-client metric whose get() /
 * getForPromString() return exactly what prom-client's Counter / Histogram return, so /metrics is unchanged
 * (local-metrics.test.ts compares the two byte for byte).
 */

type Labels = Record<string, string>;

interface Help {
  name: string;
  help: string;
}

/**
 * A label set, listed in its metric from its first use on (as prom-client lists a label set from its first
 * inc/observe, in that order, and forgets it on reset()).
 */
abstract class Cell {
  /** True while the cell is in its metric's list. */
  listed = false;
  constructor(
    readonly labels: Labels,
    readonly list: Cell[],
  ) {}

  protected use(): void {
    if (this.listed) return;
    this.listed = true;
    this.list.push(this);
  }

  abstract clear(): void;
}

/** One label set of a counter. */
export class CounterCell extends Cell {
  value = 0;

  inc(v = 1): void {
    // prom-client's checks, so a bad value fails the same way.
    if (!Number.isFinite(v)) throw new TypeError(`Value is not a valid number: ${v}`);
    if (v < 0) throw new Error('It is not possible to decrease a counter');
    this.use();
    this.value += v;
  }

  clear(): void {
    this.value = 0;
  }
}

/** One label set of a histogram: per-bucket counts (not cumulative), sum and count. */
export class HistogramCell extends Cell {
  readonly counts: Float64Array;
  sum = 0;
  count = 0;
  constructor(
    labels: Labels,
    list: Cell[],
    readonly bounds: readonly number[],
  ) {
    super(labels, list);
    this.counts = new Float64Array(bounds.length);
  }

  observe(v: number): void {
    if (!Number.isFinite(v)) throw new TypeError(`Value is not a valid number: ${v}`);
    this.use();
    const bounds = this.bounds;
    for (let i = 0; i < bounds.length; i++) {
      if (v <= bounds[i]!) {
        this.counts[i]! += 1;
        break;
      }
    }
    this.sum += v;
    this.count += 1;
  }

  clear(): void {
    this.counts.fill(0);
    this.sum = 0;
    this.count = 0;
  }
}

function resetCells(cells: Cell[]): void {
  for (const c of cells) {
    c.clear();
    c.listed = false;
  }
  cells.length = 0;
}

/** A counter whose label sets are cells the caller keeps (see cell()). Cells appear in /metrics in creation order. */
export class LocalCounter {
  readonly type = 'counter';
  readonly aggregator = 'sum';
  readonly name: string;
  readonly help: string;
  readonly #cells: CounterCell[] = [];

  constructor(o: Help & { registers: Registry[] }) {
    this.name = o.name;
    this.help = o.help;
    for (const r of o.registers) r.registerMetric(this as unknown as Metric);
  }

  /** A cell for a label set; the caller keeps it (asking twice for one label set would list it twice). */
  cell(labels: Labels): CounterCell {
    return new CounterCell(labels, this.#cells);
  }

  get(): { name: string; help: string; type: 'counter'; values: { value: number; labels: Labels }[]; aggregator: string } {
    return {
      help: this.help,
      name: this.name,
      type: this.type,
      values: this.#cells.map((c) => ({ value: c.value, labels: c.labels })),
      aggregator: this.aggregator,
    };
  }

  reset(): void {
    resetCells(this.#cells);
  }
}

interface ValuePair {
  labels: Record<string, string | number>;
  sharedLabels: Labels;
  value: number;
  metricName: string;
  exemplar: null | undefined;
}

/** A histogram with prom-client's bucket semantics (value <= bound; +Inf is the count). */
export class LocalHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  readonly name: string;
  readonly help: string;
  readonly bounds: readonly number[];
  readonly #cells: HistogramCell[] = [];

  constructor(o: Help & { buckets: number[]; registers: Registry[] }) {
    this.name = o.name;
    this.help = o.help;
    this.bounds = Object.freeze([...o.buckets]);
    for (const r of o.registers) r.registerMetric(this as unknown as Metric);
  }

  cell(labels: Labels): HistogramCell {
    return new HistogramCell(labels, this.#cells, this.bounds);
  }

  /** What prom-client's Histogram.getForPromString() returns: `le` in labels, the label set as sharedLabels. */
  getForPromString(): { name: string; help: string; type: 'histogram'; values: ValuePair[]; aggregator: string } {
    const bucket = `${this.name}_bucket`;
    const values: ValuePair[] = [];
    for (const c of this.#cells) {
      let acc = 0;
      for (let i = 0; i < this.bounds.length; i++) {
        acc += c.counts[i]!;
        values.push({ labels: { le: this.bounds[i]! }, sharedLabels: c.labels, value: acc, metricName: bucket, exemplar: null });
      }
      values.push(
        { labels: { le: '+Inf' }, sharedLabels: c.labels, value: c.count, metricName: bucket, exemplar: null },
        { labels: {}, sharedLabels: c.labels, value: c.sum, metricName: `${this.name}_sum`, exemplar: undefined },
        { labels: {}, sharedLabels: c.labels, value: c.count, metricName: `${this.name}_count`, exemplar: undefined },
      );
    }
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }

  /** What prom-client's Histogram.get() returns: the label set merged into each value's labels, after `le`. */
  get(): { name: string; help: string; type: 'histogram'; values: Omit<ValuePair, 'sharedLabels'>[]; aggregator: string } {
    const data = this.getForPromString();
    return { ...data, values: data.values.map(({ labels, sharedLabels, ...rest }) => ({ ...rest, labels: { ...labels, ...sharedLabels } })) };
  }

  reset(): void {
    resetCells(this.#cells);
  }
}
