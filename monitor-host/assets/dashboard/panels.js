// The panel registry: every box on every page is a panel registered here. A page is the panels
// registered for it, in `order`; the app mounts them, polls, and hands each the same context.
//
// Adding a panel (incidents, silences, healing analytics, patterns...) is one call in a module that
// `app.js` imports:
//
//   registerPanel({
//     id: 'alerts.silences',        // unique; also the panel's data-panel attribute
//     page: 'alerts',               // which page shows it (see PAGES in app.js)
//     title: 'Silences',
//     order: 200,                   // place on the page; the built-in panels use 10..100
//     wide: true,                   // span the whole row
//     overview: true,               // needs ctx.overview (/api/overview) on each refresh
//     snapshot: false,              // needs ctx.snapshot (/api/snapshot: every series and its
//                                   // recent points, heavy with many series) on each refresh
//     create(ctx) {                 // once, when the page is shown
//       const root = document.createElement('div');
//       return {
//         root,                     // what goes in the panel's box
//         async update(ctx) {},     // on each refresh and each change of the URL state
//         destroy() {},             // optional, when the page is left
//       };
//     },
//   });
//
// ctx: { overview, snapshot, state (URLSearchParams of the hash), set(patch, {push}) to change the URL state,
// now (ms) }. A panel keeps its selection in ctx.state so that links keep it.

const panels = [];

/** Registers a panel; see the comment above for its fields. */
export function registerPanel(panel) {
  for (const field of ['id', 'page', 'title', 'create']) {
    if (!panel[field]) throw new Error(`panel without ${field}`);
  }
  if (panels.some((p) => p.id === panel.id)) throw new Error(`panel ${panel.id} registered twice`);
  panels.push({ order: 100, wide: false, overview: false, snapshot: false, ...panel });
}

/** The panels of `page`, in order. */
export function panelsOf(page) {
  return panels.filter((p) => p.page === page).sort((a, b) => a.order - b.order);
}
