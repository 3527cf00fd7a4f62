/**
 * `nuvola bench kernels`: f32 matrix products and a 16M-float reduction called from a guest
 * (through nuvola:kernels and the kernel thread) against the same kernels called on WebGPU
 * directly from JavaScript in this process, and against the CPU path; then eight functions
 * sharing the device at once. Sizes: 256², 512², 1024² on a software renderer; 1024², 2048²,
 * 4096² on a real GPU.
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildGuest, createRuntime, type Runtime } from 'nuvola';
import * as cpu from '../kernels/cpu.js';
import { KernelEngine } from '../kernels/engine.js';
import { figure, median, report, round, time, type BenchReport, type Figure } from './harness.js';

const DIRECT = 'same kernel, WebGPU from JS';

export interface KernelsBenchOptions {
  runs: number;
}

export const KERNELS_DEFAULTS: KernelsBenchOptions = { runs: 3 };

const guestDir = fileURLToPath(new URL('../../bench/guests/', import.meta.url));

function problem(n: number): { a: Float32Array; b: Float32Array } {
  const a = new Float32Array(n * n);
  const b = new Float32Array(n * n);
  for (let i = 0; i < n * n; i++) {
    a[i] = ((i % 7) - 3) * 0.25;
    b[i] = ((i % 5) - 2) * 0.5;
  }
  return { a, b };
}

const args = (op: number, n: number, repeat: number): Uint8Array => new Uint8Array(new Uint32Array([op, n, repeat]).buffer);

/** What the guest last answered (c[0], c[last] or the sum), to check against the direct run. */
let lastGuestOutput = new Float32Array(2);

/** Time of one kernel inside a guest call: (call with `repeat` kernels − call with 1) / (repeat − 1). */
async function guestKernelMs(rt: Runtime, fn: string, op: number, n: number, repeat: number): Promise<number> {
  const t1 = performance.now();
  await rt.invoke(fn, args(op, n, 1));
  const one = performance.now() - t1;
  const t2 = performance.now();
  const result = await rt.invoke(fn, args(op, n, repeat));
  const many = performance.now() - t2;
  lastGuestOutput = new Float32Array(Uint8Array.from(result.output).buffer);
  return Math.max(0, (many - one) / (repeat - 1));
}

function check(what: string, ours: number, theirs: number): void {
  if (Math.abs(ours - theirs) > 1e-3 * Math.max(1, Math.abs(theirs))) {
    throw new Error(`bench kernels: ${what} from the guest is ${ours}, directly ${theirs}: the kernel path is wrong`);
  }
}

export async function benchKernels(options: KernelsBenchOptions = KERNELS_DEFAULTS): Promise<BenchReport> {
  const rt = await createRuntime({ workers: 2, logger: () => {}, kernels: { maxKernelMs: 600_000 } });
  // The direct baseline runs on this thread, so Mesa's EGL needs the platform here too.
  process.env['EGL_PLATFORM'] ??= 'surfaceless';
  const direct = new KernelEngine();
  const figures: Figure[] = [];
  const notes: string[] = [];
  try {
    const bytes = await buildGuest(join(guestDir, 'kernels.ts'));
    await rt.register('k', bytes, { memoryLimitPages: 4096, timeoutMs: 600_000 });
    if (!(await rt.kernels.available()) || !(await direct.available())) {
      throw new Error('bench kernels: no WebGPU adapter (install Mesa or run on a GPU machine); nothing to compare');
    }
    const adapter = rt.kernels.stats().adapter ?? direct.stats().adapter ?? 'unknown';
    const software = /llvmpipe|OpenGL|SwiftShader|software/i.test(adapter);
    notes.push(`adapter: ${adapter}${software ? ' (software renderer: figures show overheads, not GPU speed)' : ''}`);
    const sizes = software ? [256, 512, 1024] : [1024, 2048, 4096];
    for (const n of sizes) {
      const { a, b } = problem(n);
      const flop = 2 * n ** 3;
      const repeat = n >= 1024 && software ? 2 : 4;
      await direct.matmulF32(a, b, n, n, n); // warm-up: pipeline compiled, device ready
      await guestKernelMs(rt, 'k', 1, n, 2);
      const ours: number[] = [];
      const theirs: number[] = [];
      let product: Float32Array = new Float32Array(0);
      for (let r = 0; r < options.runs; r++) {
        ours.push(await guestKernelMs(rt, 'k', 1, n, repeat));
        theirs.push(await time(async () => (product = await direct.matmulF32(a, b, n, n, n))));
      }
      check(`matmul ${n}² c[0]`, lastGuestOutput[0]!, product[0]!);
      check(`matmul ${n}² c[last]`, lastGuestOutput[1]!, product[n * n - 1]!);
      const o = median(ours);
      const d = median(theirs);
      figures.push(figure(`matmul ${n}² f32 from a guest`, 'ms', 'lower', ours, DIRECT, theirs));
      notes.push(
        `matmul ${n}²: ${(flop / (o / 1000) / 1e9).toFixed(1)} GFLOP/s from a guest, ${(flop / (d / 1000) / 1e9).toFixed(1)} GFLOP/s direct`,
      );
      if (n <= 512) {
        const c = await time(() => Promise.resolve(cpu.matmul(a, b, n, n, n)));
        figures.push(figure(`matmul ${n}² f32 on the CPU path`, 'ms', 'lower', [c], DIRECT, theirs));
      }
    }
    // Reduction of 16M floats.
    const count = 16 * 1024 * 1024;
    const x = new Float32Array(count);
    for (let i = 0; i < count; i++) x[i] = ((i % 11) - 5) * 0.125;
    await direct.sumF32(x);
    await guestKernelMs(rt, 'k', 2, count, 2);
    const ours: number[] = [];
    const theirs: number[] = [];
    const cpus: number[] = [];
    let total = 0;
    for (let r = 0; r < options.runs; r++) {
      ours.push(await guestKernelMs(rt, 'k', 2, count, 3));
      theirs.push(await time(async () => (total = await direct.sumF32(x))));
      cpus.push(await time(() => Promise.resolve(cpu.sum(x))));
    }
    check('sum of 16M', lastGuestOutput[0]!, total);
    check('sum of 16M on the CPU', cpu.sum(x), total);
    figures.push(figure('sum of 16M f32 from a guest', 'ms', 'lower', ours, DIRECT, theirs));
    figures.push(figure('sum of 16M f32 on the CPU path', 'ms', 'lower', cpus, DIRECT, theirs));
    // Eight functions sharing the device at once, each 6 products of 128².
    const names = Array.from({ length: 8 }, (_, i) => `k${i}`);
    for (const name of names) await rt.register(name, bytes, { memoryLimitPages: 4096, timeoutMs: 600_000 });
    const spreads: number[] = [];
    const alone = await time(() => rt.invoke('k0', args(1, 128, 6)));
    for (let r = 0; r < options.runs; r++) {
      const start = performance.now();
      const ends = await Promise.all(names.map((name) => rt.invoke(name, args(1, 128, 6)).then(() => performance.now() - start)));
      spreads.push(Math.max(...ends) / Math.min(...ends));
    }
    figures.push({
      name: '8 functions sharing the device: slowest / fastest completion',
      unit: '×',
      median: round(median(spreads), 3),
      baseline: 'equal share (1.0)',
      baselineMedian: 1,
      ratio: round(median(spreads), 3),
      better: 'lower',
    });
    notes.push(`one function alone: 6 products of 128² in ${alone.toFixed(1)} ms`);
  } finally {
    direct.destroy();
    await rt.close();
  }
  return report('kernels', options.runs, figures, notes);
}
