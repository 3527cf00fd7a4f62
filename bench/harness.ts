/**
 * Shared measurement helpers for the benchmarks: percentiles, repeated runs after a warm-up,
 * a readable table and the JSON document `nuvola bench --json` prints.
 */

/** One reported figure, compared with its baseline measured in the same process run. */
export interface Figure {
  name: string;
  unit: string;
  median: number;
  p99?: number;
  baseline: string;
  baselineMedian: number;
  /** nuvola / baseline. */
  ratio: number;
  /** Which way is better for this unit. */
  better: 'lower' | 'higher';
}

export interface BenchReport {
  bench: string;
  node: string;
  cpus: number;
  date: string;
  runs: number;
  figures: Figure[];
  notes: string[];
  /** Raw per-configuration measurements, where a bench has more than its figures say. */
  rows?: unknown[];
  /** Files that go with the report (name → text, e.g. an SVG plot), written next to `--out`. */
  attachments?: Record<string, string>;
}

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index]!;
}

export function median(values: readonly number[]): number {
  return percentile(
    [...values].sort((a, b) => a - b),
    50,
  );
}

/** Milliseconds `fn` takes. */
export async function time(fn: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await fn();
  return performance.now() - t;
}

/** Latency of `calls` sequential calls, in microseconds: p50 and p99 of that run. */
export async function latencyRun(call: () => Promise<unknown>, calls: number): Promise<{ p50: number; p99: number }> {
  const samples: number[] = new Array<number>(calls);
  for (let i = 0; i < calls; i++) {
    const t = performance.now();
    await call();
    samples[i] = (performance.now() - t) * 1000;
  }
  samples.sort((a, b) => a - b);
  return { p50: percentile(samples, 50), p99: percentile(samples, 99) };
}

/** Calls per second with `concurrency` calls kept in flight until `total` have completed. */
export async function throughputRun(call: () => Promise<unknown>, total: number, concurrency: number): Promise<number> {
  let issued = 0;
  const start = performance.now();
  const lane = async (): Promise<void> => {
    while (issued < total) {
      issued++;
      await call();
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, total) }, lane));
  return total / ((performance.now() - start) / 1000);
}

export function figure(
  name: string,
  unit: string,
  better: Figure['better'],
  ours: readonly number[],
  baseline: string,
  theirs: readonly number[],
  ourP99?: readonly number[],
): Figure {
  const m = median(ours);
  const b = median(theirs);
  const f: Figure = { name, unit, median: round(m), baseline, baselineMedian: round(b), ratio: round(m / b, 3), better };
  if (ourP99 !== undefined) f.p99 = round(median(ourP99));
  return f;
}

export function round(value: number, digits = 2): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}

export function report(bench: string, runs: number, figures: Figure[], notes: string[] = []): BenchReport {
  return {
    bench,
    node: process.version,
    cpus: (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator?.hardwareConcurrency ?? 0,
    date: new Date().toISOString(),
    runs,
    figures,
    notes,
  };
}

export function formatTable(r: BenchReport): string {
  const header = ['figure', 'nuvola (median)', 'p99', 'baseline', 'baseline (median)', 'ratio'];
  const rows = r.figures.map((f) => [
    f.name,
    `${f.median} ${f.unit}`,
    f.p99 === undefined ? '' : `${f.p99} ${f.unit}`,
    f.baseline,
    `${f.baselineMedian} ${f.unit}`,
    `${f.ratio}× (${f.better} is better)`,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]): string => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  const out = [
    `nuvola bench ${r.bench} — ${r.node}, ${r.cpus} CPUs, ${r.runs} runs after warm-up, ${r.date}`,
    line(header),
    `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`,
    ...rows.map(line),
  ];
  for (const note of r.notes) out.push(`- ${note}`);
  return out.join('\n');
}
