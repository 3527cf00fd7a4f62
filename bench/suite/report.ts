/**
 * What `nuvola bench suite` draws: one SVG per metric (workloads × systems, grouped bars on a
 * log scale), one HTML page with them and the table, and the plain-text table.
 */
import type { BenchReport } from '../harness.js';
import type { SuiteRow, System, Workload } from './types.js';

interface Metric {
  key: 'execMs' | 'clientMs' | 'overheadMs' | 'memoryBytes' | 'gbSeconds' | 'coldMs';
  file: string;
  title: string;
  unit: string;
  /** Published figures drawn as dashed lines across the chart. */
  marks?: { value: number; label: string }[];
}

export const METRICS: readonly Metric[] = [
  { key: 'execMs', file: 'suite-execution.svg', title: 'execution time (inside the function)', unit: 'ms' },
  { key: 'clientMs', file: 'suite-client.svg', title: 'client time (call to answer)', unit: 'ms' },
  { key: 'overheadMs', file: 'suite-overhead.svg', title: 'overhead (client − execution)', unit: 'ms' },
  {
    key: 'coldMs',
    file: 'suite-cold.svg',
    title: 'cold-start cost (cold − warm client time)',
    unit: 'ms',
    marks: [
      { value: 0.5, label: 'Faasm restore ~0.5 ms' },
      { value: 125, label: 'Firecracker boot ~125 ms' },
    ],
  },
  { key: 'memoryBytes', file: 'suite-memory.svg', title: 'peak memory', unit: 'MiB' },
  { key: 'gbSeconds', file: 'suite-gbs.svg', title: 'memory-seconds per call', unit: 'GB·s' },
];

const COLOURS: Record<System, string> = {
  nuvola: '#1f77b4',
  'nuvola restore': '#6baed6',
  'nuvola cold': '#c6dbef',
  piscina: '#d62728',
  direct: '#7f7f7f',
};
const COLD_SYSTEMS: readonly System[] = ['nuvola restore', 'nuvola cold'];

function value(rows: readonly SuiteRow[], workload: string, system: System, key: Metric['key']): number | undefined {
  const r = rows.find((x) => x.workload === workload && x.system === system);
  if (r === undefined) return undefined;
  if (key === 'coldMs') {
    const warm = rows.find((x) => x.workload === workload && x.system === 'nuvola');
    return COLD_SYSTEMS.includes(system) && warm !== undefined ? r.clientMs - warm.clientMs : undefined;
  }
  return key === 'memoryBytes' ? r.memoryBytes / 2 ** 20 : r[key];
}

const escape = (s: string): string => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);

function fmt(v: number): string {
  if (!Number.isFinite(v)) return '—';
  if (v === 0) return '0';
  const a = Math.abs(v);
  return a >= 100 ? v.toFixed(0) : a >= 1 ? v.toFixed(2) : a >= 0.001 ? v.toPrecision(3) : v.toExponential(2);
}

/** Grouped horizontal bars, one group per workload, on a log scale (values spread over orders of magnitude). */
export function barChart(rows: readonly SuiteRow[], workloads: readonly string[], metric: Metric): string {
  const systems = ([...new Set(rows.map((r) => r.system))] as System[]).filter((s) =>
    workloads.some((w) => (value(rows, w, s, metric.key) ?? 0) > 0),
  );
  const bar = 12;
  const group = systems.length * bar + 10;
  const left = 150;
  const width = 720;
  const top = 56;
  const plotW = width - left - 90;
  const height = top + workloads.length * group + 50;
  const marks = metric.marks ?? [];
  const values = [...workloads.flatMap((w) => systems.map((s) => value(rows, w, s, metric.key) ?? 0)), ...marks.map((m) => m.value)].filter(
    (v) => v > 0 && Number.isFinite(v),
  );
  const lo = Math.floor(Math.log10(Math.min(...values, 1)));
  const hi = Math.ceil(Math.log10(Math.max(...values, 1e-9)));
  const span = Math.max(1, hi - lo);
  const x = (v: number): number => left + ((Math.log10(v) - lo) / span) * plotW;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="${width}" height="${height}" fill="#fff"/>`,
    `<text x="${width / 2}" y="18" font-size="13" text-anchor="middle">nuvola bench suite: ${escape(metric.title)}, ${metric.unit} (log scale)</text>`,
  ];
  for (let e = lo; e <= hi; e++) {
    const gx = x(10 ** e);
    parts.push(
      `<line x1="${gx}" y1="${top - 4}" x2="${gx}" y2="${height - 40}" stroke="#ddd"/><text x="${gx}" y="${height - 28}" text-anchor="middle">${e >= 0 ? String(10 ** e) : (10 ** e).toFixed(-e)}</text>`,
    );
  }
  marks.forEach((m, i) => {
    const mx = x(m.value).toFixed(1);
    parts.push(
      `<line x1="${mx}" y1="${top - 4}" x2="${mx}" y2="${height - 40}" stroke="#333" stroke-dasharray="4 3"/><text x="${mx}" y="${top - 8 - 12 * (i % 2)}" text-anchor="middle" font-size="10">${escape(m.label)}</text>`,
    );
  });
  workloads.forEach((w, i) => {
    const y0 = top + i * group;
    parts.push(`<text x="${left - 6}" y="${y0 + (systems.length * bar) / 2 + 4}" text-anchor="end">${escape(w)}</text>`);
    systems.forEach((s, j) => {
      const v = value(rows, w, s, metric.key);
      if (v === undefined || !(v > 0) || !Number.isFinite(v)) return;
      const y = y0 + j * bar;
      parts.push(
        `<rect x="${left}" y="${y}" width="${Math.max(1, x(v) - left).toFixed(1)}" height="${bar - 2}" fill="${COLOURS[s]}"><title>${escape(`${w}, ${s}: ${fmt(v)} ${metric.unit}`)}</title></rect>`,
        `<text x="${(x(v) + 4).toFixed(1)}" y="${y + bar - 3}" font-size="9">${fmt(v)}</text>`,
      );
    });
  });
  systems.forEach((s, j) => {
    const lx = left + j * 130;
    parts.push(
      `<rect x="${lx}" y="${height - 16}" width="10" height="10" fill="${COLOURS[s]}"/><text x="${lx + 14}" y="${height - 7}">${s}</text>`,
    );
  });
  parts.push('</svg>');
  return parts.join('\n');
}

const COLUMNS = [
  'workload',
  'system',
  'execution ms',
  'client ms (p10–p90)',
  'overhead ms',
  'cold-start cost ms',
  'peak memory MiB',
  'GB·s per call',
];

function cells(rows: readonly SuiteRow[]): string[][] {
  return rows.map((r) => {
    const cold = COLD_SYSTEMS.includes(r.system) ? value(rows, r.workload, r.system, 'coldMs') : undefined;
    return [
      r.workload,
      r.system,
      fmt(r.execMs),
      `${fmt(r.clientMs)} (${fmt(r.clientP10Ms)}–${fmt(r.clientP90Ms)})`,
      fmt(r.overheadMs),
      cold === undefined ? '' : fmt(cold),
      fmt(r.memoryBytes / 2 ** 20),
      Number.isFinite(r.gbSeconds) ? r.gbSeconds.toExponential(2) : '—',
    ];
  });
}

/** The rows as a Markdown table (also what the CLI prints), then the figures' ratios and the notes. */
export function formatSuite(r: BenchReport): string {
  const rows = (r.rows ?? []) as SuiteRow[];
  const body = cells(rows);
  const widths = COLUMNS.map((h, i) => Math.max(h.length, ...body.map((row) => row[i]!.length)));
  const line = (c: string[]): string => `| ${c.map((x, i) => x.padEnd(widths[i]!)).join(' | ')} |`;
  const ratios = r.figures.map((f) => `- ${f.name}: ${f.median} vs ${f.baseline} ${f.baselineMedian} ms → ${f.ratio}×`);
  return [
    `nuvola bench suite — ${r.node}, ${r.cpus} CPUs, ${r.runs} runs after warm-up, ${r.date}`,
    line(COLUMNS),
    `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`,
    ...body.map(line),
    '',
    ...ratios,
    ...r.notes.map((n) => `- ${n}`),
  ].join('\n');
}

/** The SVGs and the HTML page, by file name (written next to `--out`). */
export function drawReport(r: BenchReport, rows: readonly SuiteRow[], list: readonly Workload[]): Record<string, string> {
  const names = list.map((w) => w.name);
  const out: Record<string, string> = {};
  const shown = METRICS.filter((m) => m.key !== 'coldMs' || rows.some((x) => x.system === 'nuvola cold'));
  for (const m of shown) out[m.file] = barChart(rows, names, m);
  const table = [
    `<tr>${COLUMNS.map((c) => `<th>${escape(c)}</th>`).join('')}</tr>`,
    ...cells(rows).map((c) => `<tr>${c.map((x, i) => `<td${i > 1 ? ' class="n"' : ''}>${escape(x)}</td>`).join('')}</tr>`),
  ].join('\n');
  const origins = list.map((w) => `<li><b>${escape(w.name)}</b> (${escape(w.origin)}): ${escape(w.summary)}</li>`).join('\n');
  out['suite.html'] = [
    '<!DOCTYPE html>',
    '<html lang="en"><head><meta charset="utf-8"><title>nuvola bench suite</title>',
    '<style>body{font-family:sans-serif;max-width:1000px;margin:2em auto}table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:2px 6px}td.n{text-align:right}img{display:block;margin:1em 0}</style>',
    '</head><body>',
    `<h1>nuvola bench suite</h1><p>${escape(`${r.node}, ${r.cpus} CPUs, ${r.runs} runs after a warm-up, ${r.date}`)}</p>`,
    `<table>${table}</table>`,
    `<ul>${r.notes.map((n) => `<li>${escape(n)}</li>`).join('')}</ul>`,
    ...shown.map((m) => `<h2>${escape(m.title)}</h2><img src="${m.file}" alt="${escape(m.title)}">`),
    `<h2>Workloads</h2><ul>${origins}</ul>`,
    '</body></html>',
  ].join('\n');
  return out;
}
