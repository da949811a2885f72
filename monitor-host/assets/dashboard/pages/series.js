// Series explorer: search the stored series by name and labels (a virtualised list, usable with
// tens of thousands), chart the selected ones together over a chosen range. The search, the range
// and the selection live in the URL: `#/series?q=cpu&range=1h&sel=name{a="b"}&sel=...`.

import { registerPanel } from '../panels.js';
import { el, fill, labelText, selector, num } from '../format.js';
import { RANGES, overview, range, series, step } from '../api.js';
import { chart } from '../chart.js';

/** Most series on one chart. */
const MAX_SELECTED = 10;
/** Height of a row of the list, in px (as in style.css). */
const ROW = 28;
/**
 * How often the list of every series is checked for a change, in ms: the host's series count (in
 * the small, cached `/api/overview`) is compared with the one the list was read at, and the list
 * (megabytes at 10,000 series) is read again only when it differs.
 */
const LIST_CHECK = 15000;
/** How long the list is kept at most, in ms: a series replaced by another leaves the count as is. */
const LIST_TTL = 300000;

/** A range picker for the URL's `range` (default 1h). */
export function rangePicker(current, set) {
  return el('span', { class: 'ranges', role: 'group', 'aria-label': 'time range' },
    Object.keys(RANGES).map((r) => el('button', { type: 'button', 'data-range': r, 'aria-pressed': String(r === current),
      onclick: () => set({ range: r }, { push: true }) }, r)));
}

/** The range named in the URL state, in seconds, and its name. */
export function rangeOf(state) {
  const name = RANGES[state.get('range')] ? state.get('range') : '1h';
  return [name, RANGES[name]];
}

/**
 * Whether `metric` matches the search `text`: every word must match, `key=value` a label whose
 * value contains `value`, any other word the name or a label value.
 */
export function matches(metric, words) {
  return words.every((w) => {
    const eq = w.indexOf('=');
    if (eq > 0) {
      const v = metric[w.slice(0, eq)];
      return v !== undefined && v.toLowerCase().includes(w.slice(eq + 1));
    }
    return Object.values(metric).some((v) => v.toLowerCase().includes(w));
  });
}

/**
 * A list of series that renders only the rows in view (and a few around them), so that scrolling
 * through tens of thousands stays smooth: `show(metrics, selectedKeys)`; `onPick(key)` on a click.
 */
export function virtualList(onPick) {
  const spacer = el('div', { class: 'spacer' });
  const root = el('div', { class: 'vlist', role: 'listbox', 'aria-multiselectable': 'true', tabindex: 0 }, spacer);
  let items = [];
  let selected = new Set();
  function render() {
    const first = Math.max(0, Math.floor(root.scrollTop / ROW) - 5);
    const last = Math.min(items.length, first + Math.ceil((root.clientHeight || 360) / ROW) + 10);
    spacer.style.height = `${items.length * ROW}px`;
    const rows = [];
    for (let i = first; i < last; i++) {
      const m = items[i];
      const key = selector(m);
      rows.push(el('div', { class: 'row', role: 'option', style: `top:${i * ROW}px`, 'aria-selected': String(selected.has(key)),
        'data-key': key, title: key, onclick: () => onPick(key) },
        el('b', {}, m.__name__), ' ', el('span', { class: 'labels' }, labelText(m))));
    }
    fill(spacer, rows);
  }
  root.addEventListener('scroll', () => requestAnimationFrame(render));
  return {
    root,
    show(list, chosen) {
      const changed = list !== items;
      items = list;
      selected = chosen;
      if (changed) root.scrollTop = 0;
      render();
    },
  };
}

registerPanel({
  id: 'series.explorer',
  page: 'series',
  title: 'Series',
  order: 10,
  wide: true,
  create(ctx) {
    let all = [];
    let readAt = 0;
    let checkedAt = 0;
    let countAt = null;
    let filtered = [];
    let filteredFor = null;
    const search = el('input', { type: 'search', placeholder: 'name or label=value words, or a selector {job="x"}',
      'aria-label': 'search series', value: ctx.state.get('q') || '' });
    let typing = null;
    search.addEventListener('input', () => {
      clearTimeout(typing);
      typing = setTimeout(() => ctx.set({ q: search.value || null }), 250);
    });
    const picker = el('span');
    const count = el('span', { class: 'labels', 'data-count': 0 });
    const list = virtualList((key) => {
      const sel = ctx.state.getAll('sel');
      const next = sel.includes(key) ? sel.filter((k) => k !== key) : [...sel, key].slice(-MAX_SELECTED);
      ctx.set({ sel: next }, { push: true });
    });
    const plot = chart();
    const root = el('div', {},
      el('div', { class: 'toolbar' }, search, picker, count),
      list.root,
      el('h3', {}, 'Chart'),
      plot.root);

    /** Whether the list of every series should be read again: old, or the count changed. */
    async function stale(now) {
      if (now - readAt > LIST_TTL) return true;
      if (now - checkedAt < LIST_CHECK) return false;
      checkedAt = now;
      return (await overview()).series !== countAt;
    }

    async function listed(state, now) {
      const q = (state.get('q') || '').trim();
      if (q.includes('{')) {
        // A selector: the host matches it.
        if (filteredFor !== q || now - readAt > LIST_TTL) {
          filtered = await series([q]);
          filteredFor = q;
          readAt = now;
        }
        return filtered;
      }
      if (await stale(now) || filteredFor === null || filteredFor.includes('{')) {
        const count = (await overview()).series;
        all = await series();
        countAt = count;
        readAt = now;
        checkedAt = now;
        filteredFor = undefined;
      }
      if (filteredFor !== q) {
        const words = q.toLowerCase().split(/\s+/).filter(Boolean);
        filtered = words.length ? all.filter((m) => matches(m, words)) : all;
        filteredFor = q;
      }
      return filtered;
    }

    return {
      root,
      destroy: plot.destroy,
      async update({ state, set, now }) {
        ctx = { ...ctx, state, set };
        if (document.activeElement !== search) search.value = state.get('q') || '';
        const [rangeName, seconds] = rangeOf(state);
        fill(picker, rangePicker(rangeName, set));
        const shown = await listed(state, now);
        const sel = state.getAll('sel');
        count.dataset.count = shown.length;
        count.textContent = `${num(shown.length)} series${sel.length ? `, ${sel.length} charted` : ''}`;
        list.show(shown, new Set(sel));
        const results = await Promise.all(sel.map(async (key) => {
          const found = await range(key, seconds, now);
          return found.map((r) => ({ key, label: key, points: r.points }));
        }));
        plot.draw(results.flat(), {
          startMs: now - seconds * 1000,
          endMs: now,
          stepMs: step(seconds) * 1000,
          onRemove: (key) => set({ sel: state.getAll('sel').filter((k) => k !== key) }, { push: true }),
        });
      },
    };
  },
});
