/**
 * `nuvola bench skeletons`: the four skeleton applications, each run sequentially (one call at
 * a time, the same functions), as a skeleton on 1 and on 2 workers, and — for the image
 * pipeline — in its normal form; the cost model, calibrated on a sample of each workload,
 * predicts every configuration before it runs. Reports speedups and model errors, and draws
 * predicted against measured (SVG).
 */
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { createRuntime, type Runtime } from 'nuvola';
import { calibrate, calibrateTransport, explain, normalize, predict, run, runAll, type Skeleton } from 'nuvola/skeletons';
import * as apps from '../examples/06-skeletons/apps.js';
import { median, report, round, type BenchReport, type Figure } from './harness.js';

export interface SkeletonsBenchOptions {
  runs: number;
  /** Mandelbrot image size and iteration limit. */
  mandel: apps.MandelParams;
  images: { count: number; width: number; height: number };
  words: number;
  matrix: { n: number; base: number };
}

export const SKELETONS_DEFAULTS: SkeletonsBenchOptions = {
  runs: 7,
  mandel: { width: 1200, height: 300, maxIter: 1000 },
  images: { count: 16, width: 256, height: 256 },
  words: 400_000,
  matrix: { n: 512, base: 128 },
};

/** One measured configuration of one application, with the model's prediction. */
interface Row {
  app: string;
  config: string;
  measuredMs: number;
  predictedMs: number;
}

interface App {
  name: string;
  skeleton: Skeleton;
  /** Configurations besides sequential/1 worker/2 workers: other forms at 2 workers. */
  forms: { name: string; skeleton: Skeleton }[];
  inputs: Uint8Array[];
  samples: Uint8Array[];
  /** True when the outputs are right (checked after every run). */
  verify: (outputs: Uint8Array[]) => boolean;
}

function makeApps(o: SkeletonsBenchOptions): App[] {
  const rows = apps.mandelRows(o.mandel);
  const reference = apps.sha256(apps.mandelReference(o.mandel));
  const images = apps.makeImages(o.images.count, o.images.width, o.images.height);
  const text = new TextEncoder().encode(apps.makeText(o.words));
  const counts = apps.countWords(new TextDecoder().decode(text));
  const problem = apps.matmulProblem(o.matrix.n);
  const product = apps.matmulReference(problem);
  let imageHashes: string | undefined;
  return [
    {
      name: 'mandelbrot',
      skeleton: apps.mandelSkeleton(),
      forms: [],
      inputs: rows,
      samples: rows.filter((_, i) => i % 5 === 2),
      verify: (out) => apps.sha256(out) === reference,
    },
    {
      name: 'image pipeline',
      skeleton: apps.imagePipeline(),
      forms: [],
      inputs: images,
      samples: images.slice(0, 2),
      verify: (out) => {
        // The first (sequential) run fixes the expected hashes; every later run must match.
        const hashes = out.map((o) => apps.sha256(o)).join();
        imageHashes ??= hashes;
        return hashes === imageHashes;
      },
    },
    {
      name: 'word count',
      skeleton: apps.wordCountSkeleton(),
      forms: [],
      inputs: [text],
      // Two sizes, so the model can learn that the reducers' work grows slower than the text
      // (the number of distinct words saturates).
      samples: [text.subarray(0, Math.floor(text.length / 8)), text.subarray(0, Math.floor(text.length / 4))].map((t) => {
        // Cut at a space so no word is split.
        const end = t.lastIndexOf(32);
        return t.subarray(0, end);
      }),
      verify: (out) => {
        const got = apps.decodeCounts(out[0]!);
        return got.size === counts.size && [...counts].every(([k, v]) => got.get(k) === v);
      },
    },
    {
      name: 'matmul d&c',
      skeleton: apps.matmulSkeleton(o.matrix.base),
      forms: [],
      inputs: [problem],
      samples: [apps.matmulProblem(o.matrix.n / 2, 9)],
      verify: (out) => Buffer.compare(out[0]!, product) === 0,
    },
  ];
}

const execute = (rt: Runtime, skeleton: Skeleton, inputs: Uint8Array[], sequential = false): Promise<Uint8Array[]> =>
  inputs.length === 1 ? run(rt, skeleton, inputs[0], { sequential }).then((o) => [o]) : runAll(rt, skeleton, inputs, { sequential });

export async function benchSkeletons(options: SkeletonsBenchOptions = SKELETONS_DEFAULTS): Promise<BenchReport> {
  const list = makeApps(options);
  // The normal form of each application, measured beside the original where it differs.
  const notes: string[] = [];
  for (const app of list) {
    const normal = normalize(app.skeleton);
    if (explain(normal) !== explain(app.skeleton)) app.forms.push({ name: 'normal form', skeleton: normal });
    else notes.push(`${app.name}: already in normal form (${explain(normal).split('\n').join(' ')})`);
  }
  const rows: Row[] = [];
  const cache = join(tmpdir(), 'nuvola-skeleton-guests');
  // Both runtimes stay open (idle workers sleep), so that every round runs every
  // configuration one after another: a slow spell of this shared machine then hits all of
  // them, not one. One calibration per application, on the 2-worker runtime, from samples
  // only, right before its rounds; it predicts every configuration.
  const rt1 = await createRuntime({ workers: 1, logger: () => {}, idleTimeoutMs: 600_000 });
  const rt2 = await createRuntime({ workers: 2, logger: () => {}, idleTimeoutMs: 600_000 });
  try {
    await apps.registerGuests(rt1, cache);
    await apps.registerGuests(rt2, cache);
    const transport = await calibrateTransport(rt2, 'echo');
    for (const app of list) {
      // Calibrated from samples only, a pass before every round: the machine's slow and fast
      // spells reach the calibration as they reach the runs.
      const profile = await calibrate(rt2, app.skeleton, app.samples, { transport });
      const workload = { items: app.inputs.length, itemBytes: app.inputs[0]!.byteLength };
      const configs = [
        { config: 'sequential', rt: rt2, skeleton: app.skeleton, sequential: true, k: 1 },
        { config: '1 worker', rt: rt1, skeleton: app.skeleton, sequential: false, k: 1 },
        { config: '2 workers', rt: rt2, skeleton: app.skeleton, sequential: false, k: 2 },
        ...app.forms.map((f) => ({ config: `${f.name}, 2 workers`, rt: rt2, skeleton: f.skeleton, sequential: false, k: 2 })),
      ];
      const times = configs.map(() => [] as number[]);
      for (let round = 0; round <= options.runs; round++) {
        if (round > 0) await calibrate(rt2, app.skeleton, app.samples, { into: profile, warmUp: false });
        // Rotate which configuration goes first; round 0 is the warm-up.
        for (let j = 0; j < configs.length; j++) {
          const i = (j + round) % configs.length;
          const c = configs[i]!;
          const t = performance.now();
          const out = await execute(c.rt, c.skeleton, app.inputs, c.sequential);
          const ms = performance.now() - t;
          if (!app.verify(out)) throw new Error(`bench skeletons: ${app.name} (${c.config}) produced a wrong result`);
          if (round > 0) times[i]!.push(ms);
        }
      }
      configs.forEach((c, i) =>
        rows.push({
          app: app.name,
          config: c.config,
          measuredMs: median(times[i]!),
          predictedMs: predict(profile, c.skeleton, { ...workload, workers: c.k, sequential: c.sequential }).completionMs,
        }),
      );
    }
  } finally {
    await rt1.close();
    await rt2.close();
  }
  const figures: Figure[] = [];
  const find = (app: string, config: string): Row => rows.find((r) => r.app === app && r.config === config)!;
  for (const app of list) {
    const seqRow = find(app.name, 'sequential');
    for (const config of ['1 worker', '2 workers', ...app.forms.map((f) => `${f.name}, 2 workers`)]) {
      const r = find(app.name, config);
      figures.push({
        name: `${app.name}: ${config}`,
        unit: 'ms',
        median: round(r.measuredMs),
        baseline: 'sequential run',
        baselineMedian: round(seqRow.measuredMs),
        ratio: round(r.measuredMs / seqRow.measuredMs, 3),
        better: 'lower',
      });
    }
    for (const form of app.forms) {
      const nf = find(app.name, `${form.name}, 2 workers`);
      const orig = find(app.name, '2 workers');
      figures.push({
        name: `${app.name}: ${form.name} vs original, 2 workers`,
        unit: 'ms',
        median: round(nf.measuredMs),
        baseline: 'original form',
        baselineMedian: round(orig.measuredMs),
        ratio: round(nf.measuredMs / orig.measuredMs, 3),
        better: 'lower',
      });
    }
    const errors = rows.filter((r) => r.app === app.name).map((r) => Math.abs(r.predictedMs - r.measuredMs) / r.measuredMs);
    notes.push(
      `${app.name}: speedup on 2 workers ${(seqRow.measuredMs / find(app.name, '2 workers').measuredMs).toFixed(2)}×; model error max ${(100 * Math.max(...errors)).toFixed(1)}% (` +
        rows
          .filter((r) => r.app === app.name)
          .map((r) => `${r.config}: predicted ${r.predictedMs.toFixed(1)} ms, measured ${r.measuredMs.toFixed(1)} ms`)
          .join('; ') +
        ')',
    );
  }
  const out = report('skeletons', options.runs, figures, notes);
  out.rows = rows.map((r) => ({ ...r, measuredMs: round(r.measuredMs), predictedMs: round(r.predictedMs) }));
  out.attachments = { 'skeletons.svg': plot(rows) };
  return out;
}

/** A log-log scatter of predicted (x) against measured (y), with y = x and a ±15% band. */
export function plot(rows: readonly { app: string; config: string; measuredMs: number; predictedMs: number }[]): string {
  const size = 420;
  const pad = 60;
  const values = rows.flatMap((r) => [r.measuredMs, r.predictedMs]);
  const lo = Math.log10(Math.min(...values) / 1.5);
  const hi = Math.log10(Math.max(...values) * 1.5);
  const pos = (v: number): number => pad + ((Math.log10(v) - lo) / (hi - lo)) * (size - 2 * pad);
  const x = (v: number): number => pos(v);
  const y = (v: number): number => size - pos(v);
  const colours = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e'];
  const appsSeen = [...new Set(rows.map((r) => r.app))];
  const ticks: string[] = [];
  for (let e = Math.floor(lo); e <= Math.ceil(hi); e++) {
    for (const m of [1, 2, 5]) {
      const v = m * 10 ** e;
      if (Math.log10(v) < lo || Math.log10(v) > hi) continue;
      ticks.push(
        `<line x1="${x(v)}" y1="${size - pad}" x2="${x(v)}" y2="${size - pad + 5}" stroke="#000"/><text x="${x(v)}" y="${size - pad + 18}" font-size="11" text-anchor="middle">${v}</text>`,
        `<line x1="${pad - 5}" y1="${y(v)}" x2="${pad}" y2="${y(v)}" stroke="#000"/><text x="${pad - 8}" y="${y(v) + 4}" font-size="11" text-anchor="end">${v}</text>`,
      );
    }
  }
  const a = 10 ** lo;
  const b = 10 ** hi;
  // Error = |predicted − measured| / measured ≤ 15% ⇔ measured within [predicted / 1.15, predicted / 0.85].
  const clamp = (v: number): number => Math.min(b, Math.max(a, v));
  const edge = (f: number): string => [a, b].map((p) => `${x(p)},${y(clamp(p * f))}`).join(' ');
  const band = `<polygon points="${edge(1 / 1.15)} ${[b, a].map((p) => `${x(p)},${y(clamp(p / 0.85))}`).join(' ')}" fill="#eee"/>`;
  const points = rows
    .map((r) => {
      const c = colours[appsSeen.indexOf(r.app) % colours.length]!;
      return `<circle cx="${x(r.predictedMs).toFixed(1)}" cy="${y(r.measuredMs).toFixed(1)}" r="4" fill="${c}"><title>${r.app}, ${r.config}: predicted ${r.predictedMs.toFixed(1)} ms, measured ${r.measuredMs.toFixed(1)} ms</title></circle>`;
    })
    .join('');
  const legend = appsSeen
    .map(
      (name, i) =>
        `<circle cx="${pad + 10}" cy="${pad + 14 * i}" r="4" fill="${colours[i % colours.length]}"/><text x="${pad + 20}" y="${pad + 4 + 14 * i}" font-size="11">${name}</text>`,
    )
    .join('');
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${size}" height="${size}" font-family="sans-serif">`,
    `<rect width="${size}" height="${size}" fill="#fff"/>`,
    band,
    `<line x1="${x(a)}" y1="${y(a)}" x2="${x(b)}" y2="${y(b)}" stroke="#888" stroke-dasharray="4 3"/>`,
    `<line x1="${pad}" y1="${size - pad}" x2="${size - pad}" y2="${size - pad}" stroke="#000"/><line x1="${pad}" y1="${pad}" x2="${pad}" y2="${size - pad}" stroke="#000"/>`,
    ...ticks,
    points,
    legend,
    `<text x="${size / 2}" y="${size - 12}" font-size="12" text-anchor="middle">predicted completion time (ms)</text>`,
    `<text x="16" y="${size / 2}" font-size="12" text-anchor="middle" transform="rotate(-90 16 ${size / 2})">measured completion time (ms)</text>`,
    `<text x="${size / 2}" y="20" font-size="13" text-anchor="middle">nuvola bench skeletons: model vs measurement (grey: ±15%)</text>`,
    '</svg>',
  ].join('\n');
}
