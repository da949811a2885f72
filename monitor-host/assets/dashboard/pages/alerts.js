// Alerts: every alert instance with its state, since when, its value; and the history the host
// keeps of one alert (its transitions, healing attempts and events). Incidents, silences, healing
// analytics and pattern panels join this page through registerPanel (see panels.js) with
// `page: 'alerts'` and an `order` above 100. URL state: `#/alerts?alert=<name>&state=<state>`.

import { registerPanel } from '../panels.js';
import { el, fill, num, when, labelText } from '../format.js';

const RANK = { firing: 0, pending: 1, inactive: 2 };
const STATES = ['all', 'firing', 'pending', 'inactive'];

registerPanel({
  id: 'alerts.instances',
  page: 'alerts',
  title: 'Alert instances',
  order: 10,
  wide: true,
  overview: true,
  create() {
    const filter = el('span', { class: 'ranges', role: 'group', 'aria-label': 'state' });
    const body = el('tbody');
    const root = el('div', {}, el('div', { class: 'toolbar' }, filter),
      el('div', { class: 'table-wrap' }, el('table', {},
        el('thead', {}, el('tr', {}, ['state', 'alert', 'severity', 'labels', 'value', 'since', 'last resolved'].map((h, i) =>
          el('th', { class: i === 4 ? 'num' : i === 2 || i === 3 ? 'hide-narrow' : null }, h)))), body)));
    return {
      root,
      update({ overview: s, state, set }) {
        const only = STATES.includes(state.get('state')) ? state.get('state') : 'all';
        const chosen = state.get('alert');
        fill(filter, STATES.map((st) => el('button', { type: 'button', 'aria-pressed': String(st === only), 'data-state': st,
          onclick: () => set({ state: st === 'all' ? null : st }, { push: true }) }, st)));
        const list = s.alerts.filter((a) => only === 'all' || a.state === only)
          .sort((a, b) => RANK[a.state] - RANK[b.state] || a.alert.localeCompare(b.alert));
        fill(body, list.length ? list.map((a) => el('tr', { 'data-alert': a.alert, 'data-state': a.state,
          'aria-current': a.alert === chosen ? 'true' : null },
          el('td', {}, el('span', { class: `badge ${a.state}` }, a.state)),
          el('td', { title: a.metric ? `${a.metric}: ${a.description || ''}` : a.description || '' },
            el('button', { class: 'link', type: 'button', onclick: () => set({ alert: a.alert }, { push: true }) }, a.alert),
            a.description ? el('div', { class: 'labels' }, a.description) : null),
          el('td', { class: 'hide-narrow' }, a.severity || '–'),
          el('td', { class: 'labels hide-narrow' }, labelText(a.labels)),
          el('td', { class: 'num' }, num(a.value)),
          el('td', {}, a.state === 'inactive' ? '–' : when(a.firing_since_ms || a.active_since_ms)),
          el('td', {}, when(a.resolved_at_ms))))
          : el('tr', {}, el('td', { colspan: 7, class: 'empty' }, s.alerts.length ? `no ${only} alerts` : 'no alert has been evaluated yet')));
      },
    };
  },
});

/** What the overview tells of `alert` (every alert when none), newest first. */
export function history(s, alert) {
  const items = [];
  const mine = (name) => !alert || name === alert;
  for (const a of s.alerts.filter((x) => mine(x.alert))) {
    const who = `${a.alert} ${labelText(a.labels)}`.trim();
    if (a.active_since_ms) items.push([a.active_since_ms, 'pending', `${who}: condition holds`]);
    if (a.firing_since_ms) items.push([a.firing_since_ms, 'firing', `${who}: firing`]);
    if (a.resolved_at_ms) items.push([a.resolved_at_ms, 'inactive', `${who}: resolved`]);
  }
  for (const h of s.healing.filter((x) => mine(x.alert))) {
    items.push([h.started_ms, h.success ? 'success' : 'failure',
      `${h.strategy} attempt ${h.attempt} on ${h.alert}: ${h.message || (h.success ? 'healed' : 'failed')}`]);
  }
  for (const e of s.events.filter((x) => !alert || x.labels.alertname === alert || x.message.includes(alert))) {
    items.push([e.timestamp_ms, 'event', `${e.kind} from ${e.source}: ${e.message}`]);
  }
  return items.sort((a, b) => b[0] - a[0]);
}

registerPanel({
  id: 'alerts.history',
  page: 'alerts',
  title: 'History',
  order: 20,
  wide: true,
  overview: true,
  create() {
    const heading = el('p', { class: 'labels' });
    const root = el('div', {}, heading, el('ul', { class: 'feed' }));
    return {
      root,
      update({ overview: s, state, set }) {
        const alert = state.get('alert');
        fill(heading, alert ? [`Alert ${alert}. `, el('button', { class: 'link', type: 'button', onclick: () => set({ alert: null }, { push: true }) }, 'show all')]
          : 'Every alert; pick one above to see its own.');
        const items = history(s, alert).slice(0, 50);
        fill(root.lastChild, items.length ? items.map(([t, kind, text]) => el('li', { 'data-kind': kind },
          when(t), el('span', { class: `badge ${kind}` }, kind), ' ', text)) : el('li', { class: 'empty' }, 'nothing recorded yet'));
      },
    };
  },
});
