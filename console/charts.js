// Inline SVG bar charts (no chart library): grouped bars per label, one colour class per series.
import { h } from './dom.js';
import { t, fmtCoins } from './i18n.js';

export function barChart(title, labels, series) {
  const W = 360,
    H = 200,
    left = 40,
    bottom = 28,
    top = 12;
  const max = Math.max(1, ...series.flatMap((s) => s.values));
  const slot = (W - left - 8) / Math.max(1, labels.length);
  const bw = Math.min(40, Math.max(2, (slot * 0.8) / Math.max(1, series.length)));
  const y = (v) => top + (H - top - bottom) * (1 - v / max);
  const svg = h(
    'svg:svg',
    { class: 'chart', viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': t('chart_label', { title }) },
    h('svg:title', {}, title),
    h('svg:line', { x1: left, y1: H - bottom, x2: W - 4, y2: H - bottom, stroke: '#4d5560' }),
    h('svg:text', { x: left - 4, y: top + 8, 'text-anchor': 'end' }, fmtCoins(max)),
    h('svg:text', { x: left - 4, y: H - bottom, 'text-anchor': 'end' }, '0'),
  );
  labels.forEach((label, i) => {
    series.forEach((s, j) => {
      const v = s.values[i] ?? 0;
      const x = left + i * slot + (slot - bw * series.length) / 2 + j * bw;
      svg.append(
        h(
          'svg:rect',
          { class: `s${j % 5}`, x: x.toFixed(1), y: y(v).toFixed(1), width: bw.toFixed(1), height: (H - bottom - y(v)).toFixed(1) },
          h('svg:title', {}, `${s.name} ${label}: ${fmtCoins(v)}`),
        ),
      );
    });
    if (labels.length <= 8 || i % Math.ceil(labels.length / 8) === 0) {
      svg.append(
        h(
          'svg:text',
          { x: (left + i * slot + slot / 2).toFixed(1), y: H - bottom + 14, 'text-anchor': 'middle' },
          /^\d{4}-\d{2}-\d{2}$/.test(label) ? label.slice(5) : label.length > 12 ? `${label.slice(0, 11)}…` : label,
        ),
      );
    }
  });
  const legend = h(
    'p',
    { class: 'legend' },
    series.map((s, j) => h('span', {}, h('span', { class: `swatch s${j % 5}`, 'aria-hidden': 'true' }), s.name)),
  );
  return h('figure', { class: 'card' }, h('figcaption', { class: 'big' }, title), svg, legend);
}
