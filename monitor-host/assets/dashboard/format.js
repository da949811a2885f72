// Small helpers shared by every page: DOM building and number, time and label formatting.

/** Builds an element: `el('td', {class: 'num'}, '3')`; attributes starting with `on` are listeners. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(node.dataset, v);
    else node.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    node.append(c instanceof Node ? c : String(c));
  }
  return node;
}

/** Replaces the children of `node`. */
export function fill(node, ...children) {
  node.replaceChildren();
  for (const c of children.flat()) {
    if (c !== undefined && c !== null && c !== false) node.append(c instanceof Node ? c : String(c));
  }
  return node;
}

/** A number in at most 4 significant digits, with k/M/G above 10,000. */
export function num(v) {
  if (v === undefined || v === null || Number.isNaN(v)) return '–';
  if (!Number.isFinite(v)) return v > 0 ? '+Inf' : '-Inf';
  const a = Math.abs(v);
  if (a >= 1e10) return (v / 1e9).toFixed(1) + 'G';
  if (a >= 1e7) return (v / 1e6).toFixed(1) + 'M';
  if (a >= 1e4) return (v / 1e3).toFixed(1) + 'k';
  if (Number.isInteger(v)) return String(v);
  return String(Number(v.toPrecision(4)));
}

/** Seconds as a readable duration: `850 µs`, `12.3 ms`, `4.2 s`. */
export function seconds(s) {
  if (s === undefined || s === null || Number.isNaN(s)) return '–';
  const a = Math.abs(s);
  if (a === 0) return '0';
  if (a < 1e-3) return (s * 1e6).toPrecision(3) + ' µs';
  if (a < 1) return (s * 1e3).toPrecision(3) + ' ms';
  if (a < 120) return s.toPrecision(3) + ' s';
  return ago(s * 1000, 0).replace(' ago', '');
}

/** A size in bytes: `980 B`, `12.3 kB`, `4.56 MB`, `1.2 GB` (powers of 1000). */
export function bytes(n) {
  if (n === undefined || n === null || Number.isNaN(n)) return '–';
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let i = 0;
  let v = n;
  while (Math.abs(v) >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return i === 0 ? `${v} B` : `${Number(v.toPrecision(3))} ${units[i]}`;
}

/** A ratio as a percentage. */
export function percent(r) {
  return r === undefined || r === null || Number.isNaN(r) ? '–' : (r * 100).toFixed(r >= 0.9995 || r === 0 ? 0 : 1) + '%';
}

/** How long ago `ms` (since epoch) was, relative to `now` (ms; default now): `3 s ago`. */
export function ago(ms, now = Date.now()) {
  if (!ms) return '–';
  let d = Math.max(0, (now - ms) / 1000);
  if (d < 60) return `${Math.round(d)} s ago`;
  d /= 60;
  if (d < 60) return `${Math.round(d)} min ago`;
  d /= 60;
  if (d < 48) return `${Math.round(d)} h ago`;
  return `${Math.round(d / 24)} d ago`;
}

/** A `<time>` element showing `ago` with the exact local time as its title. */
export function when(ms) {
  if (!ms) return '–';
  const d = new Date(ms);
  return el('time', { datetime: d.toISOString(), title: d.toLocaleString() }, ago(ms));
}

/** A clock time for chart axes: `14:05`, or `Dec 2` for long ranges. */
export function clock(ms, rangeSeconds) {
  const d = new Date(ms);
  if (rangeSeconds > 2 * 86400) return d.toLocaleDateString(undefined, { month: 'short', day: 'numeric' });
  const opts = { hour: '2-digit', minute: '2-digit' };
  if (rangeSeconds <= 900) opts.second = '2-digit';
  return d.toLocaleTimeString(undefined, opts);
}

/** Labels as `a=b, c=d`, leaving out the ones in `skip`. */
export function labelText(labels, skip = []) {
  return Object.entries(labels || {})
    .filter(([k]) => k !== '__name__' && !skip.includes(k))
    .map(([k, v]) => `${k}=${v}`)
    .join(', ');
}

/** The selector that names exactly one series of the query API: `name{a="b",c="d"}`. */
export function selector(metric) {
  const escape = (v) => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
  const labels = Object.entries(metric)
    .filter(([k]) => k !== '__name__')
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => `${k}="${escape(v)}"`);
  return `${metric.__name__ || ''}{${labels.join(',')}}`;
}
