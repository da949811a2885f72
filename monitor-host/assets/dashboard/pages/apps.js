// Applications: the functions of the instrumented applications the host scrapes (the `prometheus`
// collector reading a `monitor-core` exposition): per function calls, failures, success rate and
// latency quantiles over time, the slowest and the most called. An application is the `collector`
// that scraped it. URL state: `#/apps?app=<collector>&fn=<function>&range=1h`.

import { registerPanel } from '../panels.js';
import { el, fill, num, percent, seconds as secs } from '../format.js';
import { instant, range, series, step } from '../api.js';
import { chart } from '../chart.js';
import { rangePicker, rangeOf } from './series.js';

/** The names `monitor-core` exposes, as the `prometheus` collector stores them. */
const CALLS = 'monitor_function_calls_total';
const FAILURES = 'monitor_function_failures_total';
const SUCCESS = 'monitor_function_success_ratio';
const QUANTILES = [['p50', 'monitor_function_latency_seconds_p50'], ['p90', 'monitor_function_latency_seconds_p90'],
  ['p99', 'monitor_function_latency_seconds_p99']];

const quote = (v) => `"${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;

/** Per-second increase between consecutive points of a counter; a drop is a restart. */
export function rate(points) {
  const out = [];
  for (let i = 1; i < points.length; i++) {
    const [t0, v0] = points[i - 1];
    const [t1, v1] = points[i];
    const dt = (t1 - t0) / 1000;
    if (dt > 0) out.push([t1, (v1 >= v0 ? v1 - v0 : v1) / dt]);
  }
  return out;
}

/** One row per function of `app` from an instant query of its `monitor_function_*` series. */
function functions(samples) {
  const byFn = new Map();
  for (const { metric, value } of samples) {
    const f = metric.function;
    if (f === undefined) continue;
    if (!byFn.has(f)) byFn.set(f, { name: f });
    const row = byFn.get(f);
    const v = Number(value[1]);
    if (metric.__name__ === CALLS) row.calls = v;
    else if (metric.__name__ === FAILURES) row.failures = v;
    else if (metric.__name__ === SUCCESS) row.success = v;
    else if (metric.__name__ === `${CALLS}_rate`) row.rate = v;
    for (const [q, name] of QUANTILES) if (metric.__name__ === name) row[q] = v;
  }
  return [...byFn.values()].filter((r) => r.calls !== undefined).sort((a, b) => a.name.localeCompare(b.name));
}

function top(rows, key, format, title, link) {
  const list = rows.filter((r) => r[key] !== undefined).sort((a, b) => b[key] - a[key]).slice(0, 5);
  return el('div', {}, el('h3', {}, title), el('ol', { 'data-top': key },
    list.map((r) => el('li', {}, el('a', { href: link(r.name) }, r.name), ` ${format(r[key])}`))));
}

function functionTable(rows, current, link) {
  const heads = ['function', 'calls', 'failures', 'success', 'calls/s', 'p50', 'p90', 'p99'];
  return el('div', { class: 'table-wrap' }, el('table', { 'data-functions': rows.length },
    el('thead', {}, el('tr', {}, heads.map((h, i) => el('th', { class: i ? 'num' : null }, h)))),
    el('tbody', {}, rows.map((r) => el('tr', { 'data-function': r.name, 'aria-current': r.name === current ? 'true' : null },
      el('td', {}, el('a', { href: link(r.name) }, r.name)),
      el('td', { class: 'num' }, num(r.calls)),
      el('td', { class: 'num' }, num(r.failures)),
      el('td', { class: 'num' }, percent(r.success)),
      el('td', { class: 'num' }, num(r.rate)),
      ...QUANTILES.map(([q]) => el('td', { class: 'num' }, secs(r[q]))))))));
}

registerPanel({
  id: 'apps.functions',
  page: 'apps',
  title: 'Instrumented functions',
  order: 10,
  wide: true,
  create() {
    const appPicker = el('select', { 'aria-label': 'application' });
    const picker = el('span');
    const summary = el('div');
    const charts = { calls: chart(), success: chart(), latency: chart() };
    const chartBox = el('div', { class: 'charts' },
      el('div', {}, el('h3', {}, 'Calls and failures per second'), charts.calls.root),
      el('div', {}, el('h3', {}, 'Success rate'), charts.success.root),
      el('div', {}, el('h3', {}, 'Latency p50, p90, p99'), charts.latency.root));
    const title = el('h3');
    const root = el('div', {}, el('div', { class: 'toolbar' }, appPicker, picker), summary, title, chartBox);
    let setState = null;
    appPicker.addEventListener('change', () => setState({ app: appPicker.value, fn: null }, { push: true }));
    return {
      root,
      destroy: () => Object.values(charts).forEach((c) => c.destroy()),
      async update({ state, set, now }) {
        setState = set;
        const apps = [...new Set((await series([CALLS])).map((m) => m.collector))].sort();
        if (!apps.length) {
          fill(appPicker);
          fill(summary, el('p', { class: 'empty' }, 'No instrumented application is scraped yet: add a `prometheus` collector ',
            'whose url is the /metrics of an application that serves its monitor-core registry.'));
          fill(title);
          chartBox.hidden = true;
          return;
        }
        const app = apps.includes(state.get('app')) ? state.get('app') : apps[0];
        fill(appPicker, apps.map((a) => el('option', { value: a, selected: a === app }, a)));
        const [rangeName, seconds] = rangeOf(state);
        fill(picker, rangePicker(rangeName, set));
        const rows = functions(await instant(`{__name__=~"monitor_function_.+",collector=${quote(app)}}`));
        const fn = rows.some((r) => r.name === state.get('fn')) ? state.get('fn') : rows[0]?.name;
        const link = (name) => {
          const q = new URLSearchParams(state);
          q.set('app', app);
          q.set('fn', name);
          return `#/apps?${q}`;
        };
        fill(summary, functionTable(rows, fn, link), el('div', { class: 'charts' },
          top(rows, 'p99', secs, 'Slowest (p99)', link),
          top(rows, 'calls', num, 'Most called', link)));
        chartBox.hidden = !fn;
        if (!fn) return;
        fill(title, `${fn} over the last ${rangeName}`);
        await drawFunction(charts, app, fn, seconds, now);
      },
    };
  },
});

async function drawFunction(charts, app, fn, seconds, now) {
  const where = `function=${quote(fn)},collector=${quote(app)}`;
  const [calls, failures, success, latency] = await Promise.all([
    range(`${CALLS}{${where}}`, seconds, now),
    range(`${FAILURES}{${where}}`, seconds, now),
    range(`${SUCCESS}{${where}}`, seconds, now),
    range(`{__name__=~"monitor_function_latency_seconds_p(50|90|99)",${where}}`, seconds, now),
  ]);
  const options = { startMs: now - seconds * 1000, endMs: now, stepMs: step(seconds) * 1000 };
  const counter = (list, label) => list.map((r) => ({ key: label, label, points: rate(r.points) }));
  charts.calls.draw([...counter(calls, 'calls/s'), ...counter(failures, 'failures/s')], options);
  charts.success.draw(success.map((r) => ({ key: 'success', label: 'success rate', points: r.points })),
    { ...options, format: percent, min: 0, max: 1 });
  const order = (r) => r.metric.__name__.slice(-3);
  charts.latency.draw(latency.sort((a, b) => order(a).localeCompare(order(b)))
    .map((r) => ({ key: order(r), label: order(r), points: r.points })), { ...options, format: secs });
}
