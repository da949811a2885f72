// The dashboard's entry point: the router (page and state in the URL hash), the navigation, and the
// refresh loop that hands every mounted panel the latest data. Pages are made of panels; see
// panels.js for how to add one.

import { el, fill } from './format.js';
import { overview, snapshot } from './api.js';
import { panelsOf } from './panels.js';
import './pages/overview.js';
import './pages/series.js';
import './pages/apps.js';
import './pages/alerts.js';

/** The pages, in navigation order. */
const PAGES = [
  { id: 'overview', title: 'Overview' },
  { id: 'series', title: 'Series' },
  { id: 'apps', title: 'Applications' },
  { id: 'alerts', title: 'Alerts' },
];

/** How often the mounted panels are refreshed, in ms; `?refresh=<ms>` in the page URL changes it. */
const REFRESH_MS = Number(new URLSearchParams(location.search).get('refresh')) || 3000;

const main = document.getElementById('main');
const status = document.getElementById('status');
let mounted = { page: null, panels: [] };
let timer = null;
let generation = 0;

/** The hash `#/page?k=v` as `{page, state}`. */
function parseHash() {
  const [path, query = ''] = location.hash.replace(/^#\/?/, '').split('?');
  const page = PAGES.some((p) => p.id === path) ? path : 'overview';
  return { page, state: new URLSearchParams(query) };
}

function hashOf(page, state) {
  const q = state.toString();
  return `#/${page}${q ? `?${q}` : ''}`;
}

/**
 * Changes the URL state of the current page: `patch` maps names to a value, an array (repeated
 * parameter) or null (removed). `push` adds a history entry (else the current one is replaced).
 */
function set(patch, { push = false } = {}) {
  const { page, state } = parseHash();
  for (const [k, v] of Object.entries(patch)) {
    state.delete(k);
    for (const one of v === null || v === undefined ? [] : Array.isArray(v) ? v : [v]) state.append(k, one);
  }
  const hash = hashOf(page, state);
  if (hash === location.hash) return;
  if (push) history.pushState(null, '', hash);
  else history.replaceState(null, '', hash);
  route();
}

function context(state, data) {
  return { overview: data?.overview ?? null, snapshot: data?.snapshot ?? null, state, set, now: Date.now() };
}

function nav(page) {
  const { state } = parseHash();
  fill(document.getElementById('nav'), PAGES.map((p) => {
    // Links to other pages keep the range, the one setting every page shares.
    const keep = new URLSearchParams();
    if (state.get('range')) keep.set('range', state.get('range'));
    return el('a', { href: hashOf(p.id, keep), 'aria-current': p.id === page ? 'page' : null, 'data-nav': p.id }, p.title);
  }));
}

function mount(page, state) {
  for (const m of mounted.panels) m.instance.destroy?.();
  const panels = panelsOf(page).map((panel) => {
    const body = el('div', { class: 'panel-body' });
    const box = el('section', { class: `panel${panel.wide ? ' wide' : ''}`, 'data-panel': panel.id },
      el('h2', {}, panel.title), body);
    const instance = panel.create(context(state));
    body.append(instance.root);
    return { panel, instance, box };
  });
  fill(main, panels.map((p) => p.box));
  main.dataset.page = page;
  document.title = `${PAGES.find((p) => p.id === page).title} · monitor-host`;
  mounted = { page, panels };
}

const data = { overview: null, snapshot: null };

/**
 * When each page was first drawn with data, in ms since navigation start (`performance.now()`):
 * `window.__rendered[page]`. What a benchmark or a test waits for.
 */
window.__rendered = {};

/** Refreshes every mounted panel; the overview and the snapshot are fetched once when any needs them. */
async function refresh() {
  const mine = ++generation;
  clearTimeout(timer);
  const { state } = parseHash();
  try {
    const needs = (what) => mounted.panels.some((p) => p.panel[what]);
    const [o, s] = await Promise.all([needs('overview') ? overview() : null, needs('snapshot') ? snapshot() : null]);
    data.overview = o ?? data.overview;
    data.snapshot = s ?? data.snapshot;
    if (mine !== generation) return;
    const ctx = context(state, data);
    const failures = [];
    await Promise.all(mounted.panels.map(async (p) => {
      try {
        await p.instance.update(ctx);
        p.box.removeAttribute('data-error');
      } catch (e) {
        p.box.setAttribute('data-error', e.message);
        failures.push(`${p.panel.title}: ${e.message}`);
      }
    }));
    if (mine !== generation) return;
    status.className = failures.length ? 'status error' : 'status';
    status.textContent = failures.length ? failures[0] : `updated ${new Date().toLocaleTimeString()}`;
    main.dataset.updated = String(Date.now());
    if (!failures.length && !(mounted.page in window.__rendered)) window.__rendered[mounted.page] = performance.now();
  } catch (e) {
    status.className = 'status error';
    status.textContent = `cannot reach the host: ${e.message}`;
  }
  if (mine === generation && !document.hidden) timer = setTimeout(refresh, REFRESH_MS);
}

function route() {
  const { page, state } = parseHash();
  nav(page);
  if (mounted.page !== page) mount(page, state);
  refresh();
}

window.addEventListener('hashchange', route);
document.addEventListener('visibilitychange', () => {
  if (!document.hidden) refresh();
});
route();
