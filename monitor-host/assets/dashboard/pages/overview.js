// Overview: host health, plugins and their state, firing and pending alerts, open incidents, the
// latest healing attempts and events.

import { registerPanel } from '../panels.js';
import { el, fill, num, seconds, when, labelText, bytes } from '../format.js';
import { range, step } from '../api.js';
import { chart } from '../chart.js';

/** A plugin's state from its health figures: ok, failing, backed off, crashed or stuck. */
export function pluginState(stats, now) {
  if (stats.stuck) return ['stuck', 'stuck'];
  const failing = stats.consecutive_failures > 0;
  if (failing && (stats.last_error || '').startsWith('panic')) return ['crashed', 'crashed'];
  if (failing && stats.backoff_until_ms && stats.backoff_until_ms > now && stats.consecutive_failures > 1) {
    return ['backoff', 'backed off'];
  }
  if (failing) return ['failing', 'failing'];
  return ['ok', 'ok'];
}

function kpi(value, label, attrs = {}) {
  return el('div', { class: 'kpi', ...attrs }, el('b', {}, value), el('span', {}, label));
}

registerPanel({
  id: 'overview.host',
  page: 'overview',
  title: 'Host',
  order: 10,
  overview: true,
  create() {
    const kpis = el('div', { class: 'kpis' });
    const trouble = el('p', { class: 'status error', 'data-trouble': '', hidden: true });
    const cycles = chart();
    const root = el('div', {}, kpis, trouble, el('h3', {}, 'Cycle time, last 15 minutes'), cycles.root);
    let drawnAt = 0;
    let drawn = false;
    return {
      root,
      destroy: cycles.destroy,
      async update({ overview: s, now }) {
        const c = s.last_cycle;
        const firing = s.alerts.filter((a) => a.state === 'firing').length;
        const healthy = s.plugins.filter((p) => pluginState(p.stats, now)[0] === 'ok').length;
        fill(kpis,
          kpi(s.host, 'host'),
          kpi(num(s.cycles), 'cycles'),
          kpi(c ? seconds(c.duration_seconds) : '–', 'last cycle time'),
          kpi(c ? when(c.at_ms) : '–', 'last cycle'),
          kpi(num(s.series), 'series in memory'),
          kpi(s.store_bytes === null ? '–' : bytes(s.store_bytes), 'store on disk'),
          kpi(s.store_write_errors === null ? '–' : num(s.store_write_errors), 'store write errors',
            { 'data-write-errors': s.store_write_errors ?? 0 }),
          kpi(`${healthy}/${s.plugins.length}`, 'plugins ok'),
          kpi(num(firing), 'alerts firing', { 'data-firing': firing }));
        fill(trouble, s.trouble || '');
        trouble.hidden = !s.trouble;
        // The history chart changes slowly: redrawn every 10 s once it has a line.
        if (drawn && now - drawnAt < 10000) return;
        drawnAt = now;
        const data = await range('monitor_host_cycle_duration_seconds', 900, now);
        drawn = data.some((d) => d.points.length > 1);
        cycles.draw(data.map((d) => ({ key: 'cycle', label: 'cycle time', points: d.points })),
          { startMs: now - 900e3, endMs: now, stepMs: step(900) * 1000, format: seconds });
      },
    };
  },
});

registerPanel({
  id: 'overview.plugins',
  page: 'overview',
  title: 'Plugins',
  order: 20,
  overview: true,
  create() {
    const body = el('tbody');
    const root = el('div', { class: 'table-wrap' }, el('table', {},
      el('thead', {}, el('tr', {}, ['kind', 'name', 'plugin', 'state', 'calls', 'errors'].map((h, i) =>
        el('th', { class: i >= 4 ? 'num' : null }, h)))), body));
    return {
      root,
      update({ overview: s, now }) {
        fill(body, s.plugins.length ? s.plugins.map((p) => {
          const [cls, text] = pluginState(p.stats, now);
          const errors = p.stats.errors + p.stats.timeouts + p.stats.panics;
          return el('tr', { 'data-plugin': p.name, 'data-state': cls },
            el('td', {}, p.kind),
            el('td', {}, p.name),
            el('td', { title: p.library || '' }, `${p.plugin} ${p.version}`),
            el('td', { title: p.stats.last_error || '' }, el('span', { class: `badge ${cls}` }, text),
              p.stats.last_error ? el('div', { class: 'labels' }, p.stats.last_error) : null),
            el('td', { class: 'num' }, num(p.stats.calls)),
            el('td', { class: 'num' }, num(errors)));
        }) : el('tr', {}, el('td', { colspan: 6, class: 'empty' }, 'no plugins configured')));
      },
    };
  },
});

/** The alert instances that are firing or pending, firing first. */
function active(alerts) {
  const rank = { firing: 0, pending: 1 };
  return alerts.filter((a) => a.state in rank).sort((a, b) => rank[a.state] - rank[b.state] || a.alert.localeCompare(b.alert));
}

registerPanel({
  id: 'overview.alerts',
  page: 'overview',
  title: 'Firing and pending alerts',
  order: 30,
  overview: true,
  create() {
    const root = el('ul', { class: 'feed' });
    return {
      root,
      update({ overview: s }) {
        const list = active(s.alerts);
        fill(root, list.length ? list.map((a) => el('li', { 'data-alert': a.alert, 'data-state': a.state },
          el('span', { class: `badge ${a.state}` }, a.state), ' ',
          el('a', { href: `#/alerts?alert=${encodeURIComponent(a.alert)}` }, a.alert),
          a.severity ? el('span', { class: `badge severity ${a.severity}` }, a.severity) : null,
          ` value ${num(a.value)} since `, when(a.firing_since_ms || a.active_since_ms),
          a.description ? el('div', {}, a.description) : null,
          el('div', { class: 'labels' }, labelText(a.labels)))) : el('li', { class: 'empty' }, 'nothing firing or pending'));
      },
    };
  },
});

registerPanel({
  id: 'overview.incidents',
  page: 'overview',
  title: 'Open incidents',
  order: 35,
  overview: true,
  create() {
    const root = el('ul', { class: 'feed' });
    return {
      root,
      update({ overview: s }) {
        const list = s.incidents || [];
        fill(root, list.length ? list.map((i) => el('li', { 'data-incident': String(i.id), 'data-state': i.state },
          when(i.opened_ms),
          el('span', { class: `badge ${i.state === 'open' ? 'failure' : 'success'}` }, i.state), ' ',
          el('b', {}, `#${i.id} ${i.alert}`),
          i.acknowledged ? ` acknowledged by ${i.acknowledged.by}` : '',
          i.escalated_ms ? ' (escalated)' : '',
          Object.keys(i.labels).length ? el('div', { class: 'labels' }, labelText(i.labels)) : null))
          : el('li', { class: 'empty' }, 'no open incidents'));
      },
    };
  },
});

registerPanel({
  id: 'overview.healing',
  page: 'overview',
  title: 'Latest healing attempts',
  order: 40,
  overview: true,
  create() {
    const root = el('ul', { class: 'feed' });
    return {
      root,
      update({ overview: s }) {
        const list = [...s.healing].sort((a, b) => b.started_ms - a.started_ms).slice(0, 10);
        fill(root, list.length ? list.map((h) => el('li', { 'data-healing': h.strategy },
          when(h.started_ms),
          el('span', { class: `badge ${h.success ? 'success' : 'failure'}` }, h.success ? 'success' : 'failure'), ' ',
          `${h.strategy} on ${h.alert}, attempt ${h.attempt} (${h.duration_ms} ms)`,
          h.message ? el('div', { class: 'labels' }, h.message) : null)) : el('li', { class: 'empty' }, 'no healing attempts'));
      },
    };
  },
});

registerPanel({
  id: 'overview.events',
  page: 'overview',
  title: 'Latest events',
  order: 50,
  overview: true,
  create() {
    const root = el('ul', { class: 'feed' });
    return {
      root,
      update({ overview: s }) {
        const list = [...s.events].sort((a, b) => b.timestamp_ms - a.timestamp_ms).slice(0, 15);
        fill(root, list.length ? list.map((e) => el('li', { 'data-event': e.kind },
          when(e.timestamp_ms), el('b', {}, e.kind), ` from ${e.source}: ${e.message}`,
          Object.keys(e.labels).length ? el('div', { class: 'labels' }, labelText(e.labels)) : null))
          : el('li', { class: 'empty' }, 'no events'));
      },
    };
  },
});
