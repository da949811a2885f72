// Line charts in SVG, drawn by hand: several series on shared axes, a legend, and the values at the
// pointer. Each series is one <path class="series" data-series="..."> (a gap in the data starts a
// new sub-path), so the number of series drawn can be counted in the DOM.

import { el, fill, clock, num } from './format.js';

const SVG = 'http://www.w3.org/2000/svg';
export const PALETTE = ['#2f6fde', '#e8590c', '#2b8a3e', '#ae3ec9', '#c92a2a', '#1098ad', '#f08c00', '#5c940d', '#862e9c', '#495057'];
const PAD = { left: 52, right: 12, top: 10, bottom: 22 };

function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

/** About `count` round tick values between `lo` and `hi`. */
function ticks(lo, hi, count) {
  const span = hi - lo;
  if (!(span > 0)) return [lo];
  const raw = span / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const stepSize = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) || raw;
  const out = [];
  for (let v = Math.ceil(lo / stepSize) * stepSize; v <= hi + stepSize * 1e-9; v += stepSize) out.push(Number(v.toPrecision(12)));
  return out;
}

/** The index of the point of `points` (sorted by time) nearest to `t`. */
function nearest(points, t) {
  let lo = 0;
  let hi = points.length - 1;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (points[mid][0] < t) lo = mid;
    else hi = mid;
  }
  return Math.abs(points[lo][0] - t) <= Math.abs(points[hi][0] - t) ? lo : hi;
}

/** The value range drawn: that of the data, padded, within `min` and `max` when given. */
export function bounds(series, min = -Infinity, max = Infinity) {
  const [lo, hi] = dataBounds(series);
  const clampedLo = Math.max(lo, min);
  const clampedHi = Math.min(hi, max);
  // Every value at a limit (a success rate of 100%): the span reaches down (or up) from it.
  if (clampedLo >= clampedHi) {
    const span = Math.abs(hi - lo) || Math.abs(clampedHi) * 0.1 || 1;
    return clampedHi === max ? [max - span, max] : [min, min + span];
  }
  return [clampedLo, clampedHi];
}

/** Bounds of the finite values of `series`, padded by 5% (from 0 when the values are small beside their span). */
function dataBounds(series) {
  let lo = Infinity;
  let hi = -Infinity;
  for (const s of series) {
    for (const [, v] of s.points) {
      if (Number.isFinite(v)) {
        lo = Math.min(lo, v);
        hi = Math.max(hi, v);
      }
    }
  }
  if (lo === Infinity) return [0, 1];
  if (lo >= 0 && lo <= hi / 2) lo = 0;
  if (lo === hi) {
    const pad = Math.abs(lo) * 0.1 || 1;
    return [lo - pad, hi + pad];
  }
  const pad = (hi - lo) * 0.05;
  return [lo === 0 ? 0 : lo - pad, hi + pad];
}

/** The `d` of a series' path: sub-paths split where a step has no value. */
function pathOf(points, x, y, gapMs) {
  let d = '';
  let last = null;
  for (const [t, v] of points) {
    if (!Number.isFinite(v)) {
      last = null;
      continue;
    }
    const move = last === null || t - last > gapMs;
    d += `${move ? 'M' : 'L'}${x(t).toFixed(1)},${y(v).toFixed(1)}`;
    last = t;
  }
  return d;
}

/** Width of one axis label in px: about 6 px a character at the axes' 10 px font, and a gap. */
function labelWidth(text) {
  return text.length * 6 + 16;
}

/**
 * How many intervals the time axis of `plotWidth` px is cut into so that labels like `sample` do
 * not overlap: at least 1, at most one per 110 px.
 */
export function timeTicks(plotWidth, sample) {
  return Math.max(1, Math.min(Math.floor(plotWidth / 110), Math.floor(plotWidth / labelWidth(sample))));
}

/**
 * A chart. `draw(series, {startMs, endMs, stepMs, format, min, max, onRemove})` with series
 * `[{key, label, points: [[ms, value]...]}]`; `format` writes values (default `num`); `min` and
 * `max` bound the value axis (a ratio: 0 and 1); `onRemove(key)` adds a remove button per series
 * in the legend.
 */
export function chart() {
  const box = el('div', { class: 'chart' });
  const tip = el('div', { class: 'tip', hidden: true });
  const legend = el('div', { class: 'legend' });
  const root = el('div', {}, box, legend);
  let last = null;

  function draw(series, options) {
    last = [series, options];
    const { startMs, endMs, stepMs = 0, format = num, min = -Infinity, max = Infinity, onRemove } = options;
    // The box's own width: a wider drawing scaled down to a phone's would shrink its labels.
    const width = Math.max(160, box.clientWidth || 600);
    const height = box.clientHeight > 50 ? box.clientHeight : 240;
    const plot = svg('svg', { viewBox: `0 0 ${width} ${height}`, role: 'img', 'data-series-count': series.length });
    const [lo, hi] = bounds(series, min, max);
    const x = (t) => PAD.left + ((t - startMs) / (endMs - startMs || 1)) * (width - PAD.left - PAD.right);
    const y = (v) => height - PAD.bottom - ((v - lo) / (hi - lo || 1)) * (height - PAD.top - PAD.bottom);
    const axis = svg('g', { class: 'axis' });
    // One value label per 40 px of height at most.
    for (const v of ticks(lo, hi, Math.max(2, Math.min(4, Math.floor((height - PAD.top - PAD.bottom) / 40))))) {
      axis.append(svg('line', { x1: PAD.left, x2: width - PAD.right, y1: y(v), y2: y(v) }));
      axis.append(svg('text', { class: 'y', x: PAD.left - 4, y: y(v) + 3, 'text-anchor': 'end' }, format(v)));
    }
    const span = (endMs - startMs) / 1000;
    const count = timeTicks(width - PAD.left - PAD.right, clock(endMs, span));
    for (let i = 0; i <= count; i++) {
      const t = startMs + ((endMs - startMs) * i) / count;
      const anchor = i === 0 ? 'start' : i === count ? 'end' : 'middle';
      axis.append(svg('text', { class: 'x', x: x(t), y: height - 6, 'text-anchor': anchor }, clock(t, span)));
    }
    plot.append(axis);
    const gap = Math.max(stepMs * 2.5, 1);
    series.forEach((s, i) => {
      s.color = s.color || PALETTE[i % PALETTE.length];
      plot.append(svg('path', { class: 'series', 'data-series': s.key, stroke: s.color, d: pathOf(s.points, x, y, gap) }));
    });
    if (series.length === 0) {
      plot.append(svg('text', { x: width / 2, y: height / 2, 'text-anchor': 'middle', class: 'empty', fill: 'currentColor' }, 'no data in this range'));
    }
    const cursor = svg('line', { class: 'cursor', y1: PAD.top, y2: height - PAD.bottom, visibility: 'hidden' });
    plot.append(cursor);
    const hover = (event) => {
      const rect = plot.getBoundingClientRect();
      const px = ((event.clientX - rect.left) / rect.width) * width;
      const t = startMs + ((px - PAD.left) / (width - PAD.left - PAD.right)) * (endMs - startMs);
      const rows = [];
      let at = null;
      for (const s of series) {
        if (!s.points.length) continue;
        const [pt, pv] = s.points[nearest(s.points, t)];
        at = at === null || Math.abs(pt - t) < Math.abs(at - t) ? pt : at;
        rows.push(el('div', {}, el('i', { style: `background:${s.color}` }), `${s.label}: `, el('b', {}, format(pv))));
      }
      if (at === null) return;
      cursor.setAttribute('x1', x(at));
      cursor.setAttribute('x2', x(at));
      cursor.setAttribute('visibility', 'visible');
      fill(tip, el('div', {}, new Date(at).toLocaleString()), rows);
      tip.hidden = false;
      const left = (x(at) / width) * rect.width;
      tip.style.left = `${Math.min(left + 12, Math.max(0, rect.width - tip.offsetWidth))}px`;
      tip.style.top = '8px';
    };
    plot.addEventListener('pointermove', hover);
    plot.addEventListener('pointerleave', () => {
      tip.hidden = true;
      cursor.setAttribute('visibility', 'hidden');
    });
    fill(box, plot, tip);
    fill(legend, series.map((s) => el('span', { title: s.label },
      el('i', { style: `background:${s.color}` }), s.label,
      onRemove ? el('button', { class: 'link', title: 'remove', 'aria-label': `remove ${s.label}`, onclick: () => onRemove(s.key) }, ' ×') : null)));
  }

  const resize = () => last && draw(...last);
  window.addEventListener('resize', resize);
  return { root, draw, destroy: () => window.removeEventListener('resize', resize) };
}
