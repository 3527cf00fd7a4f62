// The kernel library on a real WebGPU device. Here (no GPU) that is Mesa's software renderer
// through Dawn's OpenGL backend, which .ci/run installs; a machine without it fails the first
// test loudly instead of passing on the CPU path.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Kernels } from '../dist/kernels/index.js';
import { closedAfterEach, guestBytes, text } from './helpers.js';
import * as cpu from '../dist/kernels/cpu.js';

/** Deterministic values in [-1, 1). */
function values(n: number, seed: number): Float32Array {
  let x = seed >>> 0 || 1;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = (x >>> 0) / 2 ** 31 - 1;
  }
  return out;
}

/** Largest |a − b| / (|b| + scale), element by element. */
function maxError(a: Float32Array, b: Float32Array, scale = 1): number {
  expect(a.length).toBe(b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!) / (Math.abs(b[i]!) + scale));
  return worst;
}

const TWICE = /* wgsl */ `
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> o: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) g: vec3u) { if (g.x < arrayLength(&x)) { o[g.x] = 2.0 * x[g.x]; } }`;

describe('kernels on the GPU path', () => {
  const k = new Kernels();
  afterAll(() => k.close());

  it('finds a WebGPU adapter (Mesa in CI): the GPU path is tested for real, not skipped', async () => {
    const available = await k.available();
    if (!available) {
      throw new Error(
        'no WebGPU adapter: install mesa-vulkan-drivers libvulkan1 libegl1 libegl-mesa0 libgl1-mesa-dri (see .ci/run); the GPU tests cannot run',
      );
    }
    expect(k.stats().adapter).toMatch(/\S/);
  });

  it('matmulF32 equals the CPU product within 1e-5 relative, square and ragged shapes', async () => {
    for (const [m, kk, n] of [
      [1, 1, 1],
      [17, 33, 9],
      [64, 64, 64],
      [128, 40, 200],
    ] as const) {
      const a = values(m * kk, m + 1);
      const b = values(kk * n, n + 2);
      const gpu = await k.matmulF32(a, b, m, kk, n);
      expect(maxError(gpu, cpu.matmul(a, b, m, kk, n), 1)).toBeLessThan(1e-5 * Math.sqrt(kk));
    }
    expect(k.stats().path).toBe('gpu');
  });

  it('saxpy, add and mul equal the CPU results', async () => {
    const x = values(100_003, 3);
    const y = values(100_003, 4);
    expect(maxError(await k.saxpyF32(2.5, x, y), cpu.elementwise(x, y, 'axpby', 2.5, 1))).toBeLessThan(1e-6);
    expect(maxError(await k.addF32(x, y), cpu.elementwise(x, y, 'axpby', 1, 1))).toBeLessThan(1e-6);
    expect(maxError(await k.mulF32(x, y), cpu.elementwise(x, y, 'mul'))).toBe(0);
  });

  it('sum and max of a million values equal the CPU results (sum within 1e-5 of the magnitude)', async () => {
    const x = values(1_000_001, 5);
    let magnitude = 0;
    for (const v of x) magnitude += Math.abs(v);
    expect(Math.abs((await k.sumF32(x)) - cpu.sum(x))).toBeLessThan(1e-5 * magnitude);
    expect(await k.maxF32(x)).toBe(cpu.max(x));
    expect(await k.sumF32(Float32Array.of(1, 2, 3.5))).toBe(6.5);
  });

  it('scanF32 equals the CPU prefix sums across several levels of blocks', async () => {
    for (const n of [1, 127, 128, 129, 20_000, 300_001]) {
      const x = values(n, n);
      const gpu = await k.scanF32(x);
      const ref = cpu.scan(x);
      // f32 partial sums in a different order: error grows with the running total's size.
      expect(maxError(gpu, ref, Math.sqrt(n))).toBeLessThan(1e-5);
    }
  });

  it('conv2dF32 equals the CPU convolution, edges included', async () => {
    const img = values(61 * 47, 6);
    for (const [kh, kw] of [
      [1, 1],
      [3, 3],
      [5, 3],
    ] as const) {
      const ker = values(kh * kw, kh * 10 + kw);
      expect(maxError(await k.conv2dF32(img, 61, 47, ker, kh, kw), cpu.conv2d(img, 61, 47, ker, kh, kw))).toBeLessThan(1e-5);
    }
  });

  it('runs a registered WGSL kernel; one that does not compile is refused with the compiler message', async () => {
    await k.registerKernel('twice', { wgsl: TWICE, inputs: 1 });
    expect(Array.from(await k.runKernel('twice', { inputs: [Float32Array.of(1, 2, 3)], outputLength: 3, workgroups: [1] }))).toEqual([
      2, 4, 6,
    ]);
    const bad = await k
      .registerKernel('bad', { wgsl: 'fn main( {', inputs: 1 })
      .catch((e: unknown) => e as { code: string; details: { messages: string[] } });
    expect(bad).toMatchObject({ code: 'E_KERNEL_COMPILE' });
    expect((bad as { details: { messages: string[] } }).details.messages.join(' ')).toContain("expected ')'");
    await expect(k.runKernel('bad', { inputs: [], outputLength: 1, workgroups: [1] })).rejects.toMatchObject({ code: 'E_KERNEL_UNKNOWN' });
  });

  it('refuses mismatched dimensions and lengths that overflow, and keeps serving', async () => {
    await expect(k.matmulF32(new Float32Array(6), new Float32Array(6), 2, 3, 3)).rejects.toMatchObject({ code: 'E_KERNEL_ARGS' });
    await expect(k.matmulF32(new Float32Array(1), new Float32Array(1), 2 ** 30, 1, 1)).rejects.toMatchObject({ code: 'E_KERNEL_ARGS' });
    await expect(k.addF32(new Float32Array(3), new Float32Array(4))).rejects.toMatchObject({ code: 'E_KERNEL_ARGS' });
    await expect(k.conv2dF32(new Float32Array(4), 2, 2, new Float32Array(4), 2, 2)).rejects.toMatchObject({ code: 'E_KERNEL_ARGS' });
    expect(await k.sumF32(Float32Array.of(1, 1))).toBe(2);
  });

  it('recovers from a lost device: the next call creates a new one and re-compiles registered kernels', async () => {
    const before = k.stats().deviceLosses;
    await k.loseDevice();
    expect(await k.sumF32(Float32Array.of(4, 5))).toBe(9);
    expect(Array.from(await k.runKernel('twice', { inputs: [Float32Array.of(5)], outputLength: 1, workgroups: [1] }))).toEqual([10]);
    expect(k.stats().deviceLosses).toBe(before + 1);
  });

  it('takes callers in turn: a caller with many calls does not hold back one with few', async () => {
    const order: string[] = [];
    const x = values(50_000, 9);
    const calls = [
      ...Array.from({ length: 6 }, () => k.sumF32(x, 'busy').then(() => order.push('busy'))),
      ...Array.from({ length: 2 }, () => k.sumF32(x, 'light').then(() => order.push('light'))),
    ];
    await Promise.all(calls);
    // 'light' alternates with 'busy' (after the busy call already running) instead of waiting for all six.
    expect(order.slice(0, 5).filter((c) => c === 'light').length).toBe(2);
    expect(k.stats().perCaller).toMatchObject({ busy: 6, light: 2 });
  });
});

describe('kernels: bounded calls and the CPU path', () => {
  it('a call past maxKernelMs fails with E_KERNEL_TIMEOUT at once; the main thread stays free; later calls succeed', async () => {
    // The 1024² product takes seconds on the software renderer.
    const k = new Kernels({ maxKernelMs: 300 });
    try {
      expect(await k.available()).toBe(true);
      const n = 1024;
      const a = new Float32Array(n * n).fill(1);
      const t = performance.now();
      let ticks = 0;
      const ticker = setInterval(() => ticks++, 10);
      await expect(k.matmulF32(a, a, n, n, n)).rejects.toMatchObject({ code: 'E_KERNEL_TIMEOUT' });
      clearInterval(ticker);
      expect(performance.now() - t).toBeLessThan(3000);
      // The GPU work ran off the main thread: its timers kept firing.
      expect(ticks).toBeGreaterThan(5);
      // Mesa's OpenGL serialises the abandoned product and the new thread's work: calls time
      // out until it is done, then succeed; every failure meanwhile is a timeout.
      let result: number | undefined;
      for (let attempt = 0; attempt < 100 && result === undefined; attempt++) {
        result = await k.sumF32(Float32Array.of(2, 3)).catch((err: { code: string }) => {
          expect(err.code).toBe('E_KERNEL_TIMEOUT');
          return undefined;
        });
      }
      expect(result).toBe(5);
      expect(k.stats().deviceLosses).toBeGreaterThanOrEqual(1);
    } finally {
      await k.close();
    }
  }, 60_000);

  describe("mode: 'cpu' (the fallback, forced)", () => {
    const k = new Kernels({ mode: 'cpu' });
    beforeAll(async () => {
      expect(await k.available()).toBe(false);
    });
    afterAll(() => k.close());

    it('runs every library kernel on the CPU, with the same results as the references, and says so in stats', async () => {
      const a = values(12 * 7, 1);
      const b = values(7 * 5, 2);
      expect(await k.matmulF32(a, b, 12, 7, 5)).toEqual(cpu.matmul(a, b, 12, 7, 5));
      const x = values(1000, 3);
      expect(await k.sumF32(x)).toBe(cpu.sum(x));
      expect(await k.scanF32(x)).toEqual(cpu.scan(x));
      expect(k.stats()).toMatchObject({ path: 'cpu', gpuCalls: 0, cpuCalls: 3 });
    });

    it('a registered kernel runs its cpu version; one without fails with E_KERNEL_UNAVAILABLE', async () => {
      await k.registerKernel('twice', { wgsl: TWICE, inputs: 1, cpu: ([x]) => x!.map((v) => 2 * v) });
      expect(Array.from(await k.runKernel('twice', { inputs: [Float32Array.of(1, 2)], outputLength: 2, workgroups: [1] }))).toEqual([2, 4]);
      await expect(k.registerKernel('gpuOnly', { wgsl: TWICE, inputs: 1 })).rejects.toMatchObject({ code: 'E_KERNEL_UNAVAILABLE' });
      // A cpu version that answers something other than a Float32Array of outputLength values.
      await k.registerKernel('sloppy', { wgsl: TWICE, inputs: 1, cpu: () => [1, 2] as unknown as Float32Array });
      await expect(k.runKernel('sloppy', { inputs: [Float32Array.of(1, 2)], outputLength: 2, workgroups: [1] })).rejects.toMatchObject({
        code: 'E_KERNEL_ARGS',
      });
    });
  });
});

describe('kernels from guests (nuvola:kernels)', () => {
  const f32 = (...xs: number[]): Uint8Array => new Uint8Array(new Float32Array(xs).buffer);
  const u32 = (...xs: number[]): Uint8Array => new Uint8Array(new Uint32Array(xs).buffer);
  const request = (op: number, ...parts: Uint8Array[]): Uint8Array => new Uint8Array(Buffer.concat([Buffer.from([op, 0, 0, 0]), ...parts]));
  const floats = (r: { output: Uint8Array }): Float32Array => new Float32Array(Uint8Array.from(r.output).buffer);
  const track = closedAfterEach();

  it('a guest multiplies, sums, scans, convolves and runs a registered kernel on the device; results equal the CPU', async () => {
    const { rt } = await track({ workers: 2 });
    await rt.register('k', guestBytes('kern_ops'));
    expect(text((await rt.invoke('k', request(6))).output)).toBe('1');
    const [m, kk, n] = [13, 21, 8];
    const a = values(m * kk, 1);
    const b = values(kk * n, 2);
    const product = floats(await rt.invoke('k', request(1, u32(m, kk, n), new Uint8Array(a.buffer), new Uint8Array(b.buffer))));
    expect(maxError(product, cpu.matmul(a, b, m, kk, n))).toBeLessThan(1e-5);
    expect(Array.from(floats(await rt.invoke('k', request(2, f32(1, 2, 3.5)))))).toEqual([6.5]);
    expect(Array.from(floats(await rt.invoke('k', request(3, f32(1, 2, 3)))))).toEqual([1, 3, 6]);
    expect(Array.from(floats(await rt.invoke('k', request(4, f32(2), u32(2), f32(1, 2), f32(10, 20)))))).toEqual([12, 24]);
    expect(Array.from(floats(await rt.invoke('k', request(5, u32(2, 2, 1, 1), f32(1, 2, 3, 4), f32(3)))))).toEqual([3, 6, 9, 12]);
    expect(Array.from(floats(await rt.invoke('k', request(8, f32(-1, 7, 2)))))).toEqual([7]);
    await rt.kernels.registerKernel('twice', { wgsl: TWICE, inputs: 1 });
    expect(Array.from(floats(await rt.invoke('k', request(7, f32(1, 2, 3)))))).toEqual([2, 4, 6]);
    expect(rt.stats().kernels).toMatchObject({ path: 'gpu', perCaller: { k: 7 } });
  });

  it('bad arguments trap that call with a coded error; the function serves on', async () => {
    const { rt } = await track({ workers: 1 });
    await rt.register('k', guestBytes('kern_ops'));
    // m = 0: the SDK refuses it before calling the host.
    await expect(rt.invoke('k', request(1, u32(0, 2, 2), f32(1, 2, 3, 4)))).rejects.toMatchObject({ code: 'E_GUEST_ABORT' });
    // An unknown registered kernel.
    await expect(rt.invoke('k', request(7, f32(1)))).rejects.toMatchObject({ code: 'E_KERNEL_UNKNOWN' });
    expect(Array.from(floats(await rt.invoke('k', request(2, f32(4, 5)))))).toEqual([9]);
  });

  it("with kernels: { mode: 'cpu' } guests get the same results on the CPU path, and stats say so", async () => {
    const { rt } = await track({ workers: 1, kernels: { mode: 'cpu' } });
    await rt.register('k', guestBytes('kern_ops'));
    expect(text((await rt.invoke('k', request(6))).output)).toBe('0');
    const a = values(6, 3);
    const b = values(6, 4);
    const product = floats(await rt.invoke('k', request(1, u32(2, 3, 2), new Uint8Array(a.buffer), new Uint8Array(b.buffer))));
    expect(Array.from(product)).toEqual(Array.from(cpu.matmul(a, b, 2, 3, 2)));
    expect(rt.stats().kernels).toMatchObject({ path: 'cpu', gpuCalls: 0, cpuCalls: 1 });
  });

  it('a guest’s kernel calls go straight to the kernel thread: they complete while the main thread is blocked', async () => {
    const { rt } = await track({ workers: 1 });
    await rt.register('direct', guestBytes('kern_direct'));
    const call = rt.invoke('direct');
    // Its first call asks the main thread for the line; then the main thread blocks for 500 ms.
    await new Promise((r) => setTimeout(r, 300));
    const from = process.hrtime.bigint();
    while (process.hrtime.bigint() - from < 500_000_000n);
    const to = process.hrtime.bigint();
    const result = await call;
    expect(result.returnCode).toBe(0);
    const view = new DataView(result.output.buffer, result.output.byteOffset, result.output.byteLength);
    const times = Array.from({ length: result.output.byteLength / 8 }, (_, i) => view.getBigUint64(i * 8, true));
    // Through the main thread (as before), no call could return while it was blocked.
    expect(times.filter((t) => t > from && t < to).length).toBeGreaterThan(5);
    expect(rt.stats().kernels!.perCaller['direct']).toBe(times.length);
  });

  it('eight functions calling at once share the device in turn: every one completes its share', async () => {
    const { rt } = await track({ workers: 2 });
    const bytes = guestBytes('kern_ops');
    const names = Array.from({ length: 8 }, (_, i) => `k${i}`);
    for (const name of names) await rt.register(name, bytes);
    const x = values(20_000, 7);
    const input = request(2, new Uint8Array(x.buffer));
    await Promise.all(names.flatMap((name) => Array.from({ length: 4 }, () => rt.invoke(name, input))));
    expect(rt.stats().kernels!.perCaller).toEqual(Object.fromEntries(names.map((n) => [n, 4])));
  });
});

describe('kernels: what the device would refuse is refused with a code, never zeros', () => {
  const k = new Kernels();
  afterAll(() => k.close());

  it('too many workgroups, inputs beyond the buffer limit, bindings a kernel does not use', async () => {
    expect(await k.available()).toBe(true);
    // ceil(n / 16) workgroups in x: above 65535 for n > 1 048 560.
    await expect(k.matmulF32(new Float32Array(1_048_592), new Float32Array(1), 1_048_592, 1, 1)).rejects.toMatchObject({
      code: 'E_KERNEL_ARGS',
    });
    await expect(k.conv2dF32(new Float32Array(600_000), 600_000, 1, Float32Array.of(1), 1, 1)).rejects.toMatchObject({
      code: 'E_KERNEL_ARGS',
    });
    // A kernel that declares an input it never reads: the automatic layout drops it.
    const unused = /* wgsl */ `
      @group(0) @binding(0) var<storage, read> x: array<f32>;
      @group(0) @binding(1) var<storage, read_write> o: array<f32>;
      @compute @workgroup_size(1) fn main() { o[0] = 1.0; }`;
    await k.registerKernel('unused', { wgsl: unused, inputs: 1 });
    await expect(k.runKernel('unused', { inputs: [Float32Array.of(1)], outputLength: 1, workgroups: [1] })).rejects.toMatchObject({
      code: 'E_KERNEL_ARGS',
    });
    expect(await k.maxF32(Float32Array.of(-Infinity, -Infinity))).toBe(-Infinity);
    expect(await k.sumF32(Float32Array.of(1, 2))).toBe(3);
  });
});
