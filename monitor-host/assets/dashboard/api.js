// The host's JSON APIs: `/api/overview` (engine state without series points) and the
// Prometheus-shaped `/api/v1/...`. `/api/snapshot` (every series with its recent points) is for API
// users: heavy with many series, the dashboard does not read it.

/** The ranges the pickers offer, in seconds. */
export const RANGES = { '15m': 900, '1h': 3600, '24h': 86400, '7d': 7 * 86400, '30d': 30 * 86400 };

/** Points a chart asks for across its range. */
const POINTS = 240;

async function json(url) {
  const response = await fetch(url, { headers: { Accept: 'application/json' } });
  const text = await response.text();
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    throw new Error(`${url}: ${response.status} ${text.slice(0, 200)}`);
  }
  if (!response.ok || (body && body.status === 'error')) {
    throw new Error(`${url}: ${(body && body.error) || response.status}`);
  }
  return body;
}

function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    for (const one of Array.isArray(v) ? v : [v]) q.append(k, one);
  }
  return q.toString();
}

/**
 * `/api/overview`: host, started_ms, cycles, last_cycle, series (a count), store_bytes,
 * store_write_errors, store_consecutive_write_failures, trouble, plugins, alerts (each with its
 * rule's severity, description and metric), healing and events (the latest).
 */
export function overview() {
  return json('/api/overview');
}

/** `/api/snapshot`: every series with its recent points besides the overview's content. */
export function snapshot() {
  return json('/api/snapshot');
}

/** The series `matchers` select (`/api/v1/series`), as label maps with `__name__`. */
export async function series(matchers = ['{__name__=~".+"}']) {
  return (await json(`/api/v1/series?${query({ 'match[]': matchers })}`)).data;
}

/** The latest sample of each series `selector` selects: `[{metric, value: [t, "v"]}]`. */
export async function instant(selector) {
  return (await json(`/api/v1/query?${query({ query: selector })}`)).data.result;
}

/** The step, in seconds, of a range of `seconds` drawn with about POINTS points. */
export function step(seconds) {
  return Math.max(1, Math.ceil(seconds / POINTS));
}

/**
 * The series `selector` selects over the last `seconds` up to `endMs`, as chart input:
 * `[{metric, points: [[ms, value], ...]}]`. Long ranges are answered from rollups.
 */
export async function range(selector, seconds, endMs = Date.now()) {
  const s = step(seconds);
  // Not aligned to the step: the last point is the latest sample, even on a host started less
  // than a step ago.
  const end = Math.ceil(endMs / 1000);
  const data = (await json(`/api/v1/query_range?${query({ query: selector, start: end - seconds, end, step: s })}`)).data;
  return data.result.map((r) => ({
    metric: r.metric,
    points: r.values.map(([t, v]) => [t * 1000, Number(v)]),
  }));
}
