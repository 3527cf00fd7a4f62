/**
 * Main thread (the strings are sent to browsers). The status page served at `GET /`: one small
 * HTML document whose script polls `GET /status` every second and shows the functions, workers,
 * instances, calls per second and latency percentiles, with a chart of the last two minutes
 * drawn on a canvas (no library, no external request: the page works offline).
 */
import type { RuntimeStats } from '../runtime/index.js';

/** What `GET /status` answers: the figures the page shows. */
export interface StatusDocument {
  /** Milliseconds since the epoch when the figures were read. */
  time: number;
  uptimeS: number;
  workers: number;
  instances: number;
  inflight: number;
  completed: number;
  failed: number;
  coldStarts: number;
  warmStarts: number;
  functions: {
    name: string;
    calls: number;
    errors: number;
    running: number;
    waiting: number;
    latencyMs: { p50: number; p90: number; p99: number };
  }[];
}

export function statusDocument(
  stats: RuntimeStats,
  startedAt: number,
  publish: (registered: string) => string,
  names: string[],
): StatusDocument {
  const byName = new Map(Object.entries(stats.byFunction).map(([registered, s]) => [publish(registered), s] as const));
  return {
    time: Date.now(),
    uptimeS: Math.round((Date.now() - startedAt) / 1000),
    workers: stats.workers,
    instances: stats.instances,
    inflight: stats.inflight,
    completed: stats.completed,
    failed: stats.failed,
    coldStarts: stats.coldStarts,
    warmStarts: stats.warmStarts,
    functions: names.map((name) => {
      const s = byName.get(name);
      return {
        name,
        calls: s?.calls ?? 0,
        errors: s === undefined ? 0 : Object.values(s.errors).reduce((a, b) => a + b, 0),
        running: s?.running ?? 0,
        waiting: s?.waiting ?? 0,
        latencyMs: { p50: s?.latencyMs.p50 ?? 0, p90: s?.latencyMs.p90 ?? 0, p99: s?.latencyMs.p99 ?? 0 },
      };
    }),
  };
}

const SCRIPT = String.raw`
const $ = (id) => document.getElementById(id);
const history = [];
let last;
const fmt = (ms) => ms === 0 ? '–' : ms < 1 ? (ms * 1000).toFixed(0) + ' µs' : ms < 1000 ? ms.toFixed(1) + ' ms' : (ms / 1000).toFixed(2) + ' s';
function draw() {
  const c = $('chart');
  const g = c.getContext('2d');
  const w = c.width, h = c.height;
  g.clearRect(0, 0, w, h);
  g.strokeStyle = '#ddd';
  for (let i = 1; i < 4; i++) { g.beginPath(); g.moveTo(0, h * i / 4); g.lineTo(w, h * i / 4); g.stroke(); }
  if (history.length < 2) return;
  const max = Math.max(1, ...history.map((p) => p.rate));
  $('chart-max').textContent = max.toFixed(0) + ' calls/s';
  g.strokeStyle = '#2a6fdb';
  g.lineWidth = 2;
  g.beginPath();
  history.forEach((p, i) => {
    const x = w - ((history.length - 1 - i) / 119) * w, y = h - (p.rate / max) * (h - 4) - 2;
    if (i === 0) g.moveTo(x, y); else g.lineTo(x, y);
  });
  g.stroke();
}
async function poll() {
  try {
    const res = await fetch('status', { cache: 'no-store' });
    const s = await res.json();
    const total = s.completed + s.failed;
    const rate = last === undefined ? 0 : Math.max(0, (total - last.total) / ((s.time - last.time) / 1000));
    const perFn = {};
    for (const f of s.functions) {
      const before = last?.fns[f.name];
      perFn[f.name] = before === undefined ? 0 : Math.max(0, (f.calls - before) / ((s.time - last.time) / 1000));
    }
    last = { total, time: s.time, fns: Object.fromEntries(s.functions.map((f) => [f.name, f.calls])) };
    history.push({ rate });
    if (history.length > 120) history.shift();
    $('workers').textContent = s.workers;
    $('instances').textContent = s.instances;
    $('inflight').textContent = s.inflight;
    $('rate').textContent = rate.toFixed(1);
    $('uptime').textContent = s.uptimeS + ' s';
    $('starts').textContent = s.coldStarts + ' / ' + s.warmStarts;
    const body = $('functions');
    body.replaceChildren(...s.functions.map((f) => {
      const tr = document.createElement('tr');
      tr.dataset.name = f.name;
      for (const v of [f.name, f.calls, perFn[f.name].toFixed(1), f.errors, f.running + ' / ' + f.waiting, fmt(f.latencyMs.p50), fmt(f.latencyMs.p90), fmt(f.latencyMs.p99)]) {
        const td = document.createElement('td');
        td.textContent = String(v);
        tr.append(td);
      }
      return tr;
    }));
    $('state').textContent = 'live';
    $('state').className = 'live';
  } catch (err) {
    $('state').textContent = 'unreachable';
    $('state').className = 'down';
  }
  draw();
}
poll();
setInterval(poll, 1000);
`;

export const STATUS_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>nuvola</title>
<style>
  body { font: 14px system-ui, sans-serif; margin: 24px; color: #222; }
  h1 { font-size: 20px; margin: 0 0 12px; }
  .cards { display: flex; gap: 12px; flex-wrap: wrap; margin-bottom: 16px; }
  .card { border: 1px solid #ddd; border-radius: 6px; padding: 8px 14px; min-width: 110px; }
  .card b { display: block; font-size: 22px; }
  table { border-collapse: collapse; width: 100%; margin-top: 16px; }
  th, td { text-align: right; padding: 4px 10px; border-bottom: 1px solid #eee; }
  th:first-child, td:first-child { text-align: left; }
  canvas { border: 1px solid #ddd; border-radius: 6px; width: 100%; height: 160px; }
  .live { color: #1a7f37; } .down { color: #c62828; }
  small { color: #666; }
</style>
</head>
<body>
<h1>nuvola <small id="state">connecting…</small></h1>
<div class="cards">
  <div class="card">workers<b id="workers">–</b></div>
  <div class="card">instances<b id="instances">–</b></div>
  <div class="card">in flight<b id="inflight">–</b></div>
  <div class="card">calls/s<b id="rate">–</b></div>
  <div class="card">cold / warm<b id="starts">–</b></div>
  <div class="card">up<b id="uptime">–</b></div>
</div>
<div><small>calls per second, last two minutes (top: <span id="chart-max">–</span>)</small></div>
<canvas id="chart" width="960" height="160"></canvas>
<table>
  <thead><tr><th>function</th><th>calls</th><th>calls/s</th><th>errors</th><th>running / waiting</th><th>p50</th><th>p90</th><th>p99</th></tr></thead>
  <tbody id="functions"></tbody>
</table>
<script>${SCRIPT}</script>
</body>
</html>
`;
