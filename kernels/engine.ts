/**
 * Kernel thread (see thread.ts). The kernels themselves: a WebGPU device (the `webgpu`
 * package: Dawn) and the CPU path of every library kernel. Calls run one at a time, in the
 * order the client sends them.
 *
 * The device is created on first use: Dawn's default backend first (Vulkan, Metal, D3D12 —
 * a real GPU), then OpenGL through EGL (Mesa's software renderer on a machine without a GPU;
 * there Dawn runs the GPU work on this thread, which is why it is not the main thread). A
 * lost device fails the call that was on it with `E_KERNEL_DEVICE_LOST`; the next call
 * creates a new one.
 *
 * Why it is this long: every kernel's GPU path goes through the one device this class opens,
 * loses and reopens, its pipeline cache and its buffer helpers (the WGSL sources are in
 * wgsl.ts, the CPU versions in cpu.ts).
 */
import { create } from 'webgpu';
import { ErrorCode, KernelError } from '../runtime/errors.js';
import * as cpu from './cpu.js';
import * as wgsl from './wgsl.js';

// WebGPU flag values (from the spec), so that nothing is added to the process's globals.
const STORAGE = 0x80;
const COPY_SRC = 0x04;
const COPY_DST = 0x08;
const MAP_READ = 0x01;
const UNIFORM = 0x40;
const MAP_MODE_READ = 0x01;
const MAX_GROUPS = 65535;

export interface EngineOptions {
  /** `'auto'` (default): the GPU when an adapter is found, else the CPU; `'gpu'`: fail without one; `'cpu'`: never the GPU. */
  mode?: 'auto' | 'gpu' | 'cpu';
  /** Dawn toggles per attempt; default: the default backend, then `backend=opengl`. */
  backends?: string[][];
}

/** A kernel the embedding service brings: WGSL with a declared signature. */
export interface KernelSpec {
  wgsl: string;
  entryPoint?: string;
  /** Read-only `array<f32>` storage inputs, bound at 0 … inputs − 1. */
  inputs: number;
  /** The `array<f32>` output is bound at `inputs`; with `params`, a `uniform` of u32s at `inputs + 1`. */
  params?: boolean;
  /** The same computation in JavaScript, for the CPU path (run by the client, on its thread); without it the kernel needs a GPU. */
  cpu?: (inputs: Float32Array[], params: Uint32Array) => Float32Array;
}

export interface EngineStats {
  /** Which path the last call took (the client counts calls and losses). */
  path: 'gpu' | 'cpu' | 'none';
  /** The adapter in use, when there is one. */
  adapter: string | undefined;
}

/** Keeps every `create()` result alive for the life of the process (Dawn crashes otherwise). */
const keepAlive: unknown[] = [];

function argsError(message: string, details: Record<string, unknown> = {}): KernelError {
  return new KernelError(ErrorCode.KERNEL_ARGS, message, details);
}

function checkDim(name: string, v: number): void {
  if (!Number.isInteger(v) || v < 1 || v > 1 << 24) throw argsError(`${name} must be an integer from 1 to 2^24, got ${v}`, { [name]: v });
}

/** Bytes of a Float32Array safe to hand to writeBuffer (never a view of shared memory). */
function ownBytes(data: Float32Array | Uint32Array): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return bytes.buffer instanceof SharedArrayBuffer ? bytes.slice() : (bytes as Uint8Array<ArrayBuffer>);
}

export class KernelEngine {
  private readonly mode: 'auto' | 'gpu' | 'cpu';
  private readonly backends: string[][];
  private device: GPUDevice | undefined;
  private opening: Promise<GPUDevice | undefined> | undefined;
  private noAdapter = false;
  private adapterName: string | undefined;
  /** The Dawn toggles that found the adapter in use. */
  backend: string[] | undefined;
  private readonly pipelines = new Map<string, GPUComputePipeline>();
  private readonly custom = new Map<string, Omit<KernelSpec, 'cpu'>>();
  private lastPath: 'gpu' | 'cpu' | 'none' = 'none';

  constructor(options: EngineOptions = {}) {
    this.mode = options.mode ?? 'auto';
    this.backends = options.backends ?? [[], ['backend=opengl']];
  }

  /** Whether library kernels run on a GPU (creating the device if needed). */
  async available(): Promise<boolean> {
    return (await this.acquire()) !== undefined;
  }

  stats(): EngineStats {
    return {
      path: this.lastPath,
      adapter: this.adapterName,
    };
  }

  // ---- the library --------------------------------------------------------------------

  /** C = A · B for row-major A (m×k) and B (k×n). */
  matmulF32(a: Float32Array, b: Float32Array, m: number, k: number, n: number): Promise<Float32Array> {
    checkDim('m', m);
    checkDim('k', k);
    checkDim('n', n);
    if (a.length !== m * k) return Promise.reject(argsError(`a has ${a.length} values; m×k = ${m}×${k} needs ${m * k}`, { m, k }));
    if (b.length !== k * n) return Promise.reject(argsError(`b has ${b.length} values; k×n = ${k}×${n} needs ${k * n}`, { k, n }));
    this.checkBytes(m * k * 4, 'a');
    this.checkBytes(k * n * 4, 'b');
    this.checkBytes(m * n * 4, 'the product');
    this.checkGroups(Math.ceil(n / 16), Math.ceil(m / 16));
    return this.run(
      () => cpu.matmul(a, b, m, k, n),
      (d) => this.runGpu(d, 'matmul', wgsl.MATMUL, [a, b], m * n, new Uint32Array([m, k, n, 0]), [[Math.ceil(n / 16), Math.ceil(m / 16)]]),
    );
  }

  /** out = alpha · x + y. */
  saxpyF32(alpha: number, x: Float32Array, y: Float32Array): Promise<Float32Array> {
    return this.elementwise(x, y, 0, alpha, 1);
  }

  addF32(x: Float32Array, y: Float32Array): Promise<Float32Array> {
    return this.elementwise(x, y, 0, 1, 1);
  }

  mulF32(x: Float32Array, y: Float32Array): Promise<Float32Array> {
    return this.elementwise(x, y, 1, 1, 1);
  }

  sumF32(x: Float32Array): Promise<number> {
    return this.reduction(x, 0);
  }

  maxF32(x: Float32Array): Promise<number> {
    if (x.length === 0) return Promise.reject(argsError('maxF32 of no values'));
    return this.reduction(x, 1);
  }

  /** Inclusive prefix sums. */
  scanF32(x: Float32Array): Promise<Float32Array> {
    if (x.length === 0) return Promise.resolve(new Float32Array(0));
    this.checkBytes(x.length * 4, 'the input');
    return this.run(
      () => cpu.scan(x),
      (d) => this.scanGpu(d, x),
    );
  }

  /** Same-size 2-D convolution of an h×w image with a kh×kw kernel (odd sizes), zeros outside. */
  conv2dF32(img: Float32Array, h: number, w: number, kernel: Float32Array, kh: number, kw: number): Promise<Float32Array> {
    checkDim('h', h);
    checkDim('w', w);
    if (img.length !== h * w) return Promise.reject(argsError(`the image has ${img.length} values; h×w = ${h}×${w} needs ${h * w}`));
    if (!Number.isInteger(kh) || !Number.isInteger(kw) || kh % 2 !== 1 || kw % 2 !== 1 || kh > 31 || kw > 31) {
      return Promise.reject(argsError(`kernel sizes must be odd integers up to 31, got ${kh}×${kw}`));
    }
    if (kernel.length !== kh * kw) return Promise.reject(argsError(`the kernel has ${kernel.length} values; ${kh}×${kw} needs ${kh * kw}`));
    this.checkBytes(h * w * 4, 'the image');
    this.checkGroups(Math.ceil(w / 16), Math.ceil(h / 8));
    return this.run(
      () => cpu.conv2d(img, h, w, kernel, kh, kw),
      (d) =>
        this.runGpu(d, 'conv2d', wgsl.CONV2D, [img, kernel], h * w, new Uint32Array([h, w, kh, kw]), [
          [Math.ceil(w / 16), Math.ceil(h / 8)],
        ]),
    );
  }

  // ---- kernels the embedding service brings ---------------------------------------------

  /**
   * Compiles `spec.wgsl` now and keeps it under `name`. A kernel that does not compile is
   * refused with `E_KERNEL_COMPILE` and the compiler's messages; without a GPU, with
   * `E_KERNEL_UNAVAILABLE` (the client then falls back on the kernel's CPU version, if any).
   */
  async registerKernel(name: string, spec: Omit<KernelSpec, 'cpu'>): Promise<void> {
    if (typeof name !== 'string' || !/^[A-Za-z0-9_.:-]{1,64}$/.test(name)) {
      throw argsError(`a kernel name must be 1 to 64 of A-Z a-z 0-9 _ . : -, got ${JSON.stringify(name)}`);
    }
    if (this.custom.has(name)) throw argsError(`a kernel named '${name}' is already registered`, { kernel: name });
    if (typeof spec?.wgsl !== 'string' || !Number.isInteger(spec.inputs) || spec.inputs < 0 || spec.inputs > 6) {
      throw argsError('a kernel spec needs wgsl (a string) and inputs (0 to 6)');
    }
    const device = await this.acquire();
    if (device === undefined) {
      throw new KernelError(
        ErrorCode.KERNEL_UNAVAILABLE,
        `kernel '${name}' needs a GPU and none is available; give it a cpu version or run where a GPU adapter is`,
        {
          kernel: name,
        },
      );
    }
    await this.compile(device, `custom:${name}`, spec.wgsl, spec.entryPoint ?? 'main', name);
    this.custom.set(name, spec);
  }

  /** Runs the registered kernel `name` on `inputs` with `workgroups` (x, y, z) and returns its output. */
  runKernel(
    name: string,
    call: { inputs: Float32Array[]; outputLength: number; params?: Uint32Array; workgroups: [number, number?, number?] },
  ): Promise<Float32Array> {
    const spec = this.custom.get(name);
    if (spec === undefined)
      return Promise.reject(
        new KernelError(ErrorCode.KERNEL_UNKNOWN, `no kernel named '${name}' is registered; registerKernel() it first`, { kernel: name }),
      );
    if (call.inputs.length !== spec.inputs)
      return Promise.reject(argsError(`kernel '${name}' takes ${spec.inputs} inputs, got ${call.inputs.length}`));
    if (!Number.isInteger(call.outputLength) || call.outputLength < 1)
      return Promise.reject(argsError('outputLength must be a positive integer'));
    const groups = call.workgroups.map((g) => g ?? 1);
    if (groups.some((g) => !Number.isInteger(g) || g < 1 || g > MAX_GROUPS))
      return Promise.reject(argsError(`workgroups must be integers from 1 to ${MAX_GROUPS}`));
    this.checkBytes(call.outputLength * 4, 'the output');
    for (const input of call.inputs) this.checkBytes(input.byteLength, 'an input');
    this.checkGroups(...(groups as [number, number, number]));
    const params = call.params ?? new Uint32Array(4);
    return this.run(undefined, (d) =>
      this.runGpu(
        d,
        `custom:${name}`,
        spec.wgsl,
        call.inputs,
        call.outputLength,
        spec.params === true ? params : undefined,
        [groups as [number, number, number]],
        spec.entryPoint ?? 'main',
      ),
    );
  }

  /** Releases the device. Later calls create a new one. */
  destroy(): void {
    this.device?.destroy();
    this.device = undefined;
    this.pipelines.clear();
  }

  /** @internal Loses the device on purpose (tests of the recovery path): calls on it fail, the next one makes a new one. */
  loseDevice(): void {
    this.destroy();
  }

  // ---- internals ------------------------------------------------------------------------

  private checkGroups(...counts: number[]): void {
    const limit = this.device?.limits.maxComputeWorkgroupsPerDimension ?? MAX_GROUPS;
    if (counts.some((c) => c > limit)) {
      throw argsError(`the work needs ${counts.join('×')} workgroups, above the device's ${limit} per dimension; split the work`, {
        workgroups: counts,
        limit,
      });
    }
  }

  private checkBytes(bytes: number, what: string): void {
    const limit = this.device?.limits.maxStorageBufferBindingSize ?? 128 << 20;
    if (bytes > limit)
      throw argsError(`${what} needs ${bytes} bytes, above the device's ${limit}-byte buffer limit; split the work`, { bytes, limit });
  }

  private elementwise(x: Float32Array, y: Float32Array, op: 0 | 1, alpha: number, beta: number): Promise<Float32Array> {
    if (x.length !== y.length) return Promise.reject(argsError(`x has ${x.length} values and y ${y.length}; they must match`));
    if (x.length === 0) return Promise.resolve(new Float32Array(0));
    this.checkBytes(x.length * 4, 'the input');
    const params = new Uint32Array(4);
    params[0] = x.length;
    params[1] = op;
    new Float32Array(params.buffer).set([alpha, beta], 2);
    return this.run(
      () => cpu.elementwise(x, y, op === 1 ? 'mul' : 'axpby', alpha, beta),
      (d) => this.runGpu(d, 'elementwise', wgsl.ELEMENTWISE, [x, y], x.length, params, [[Math.min(MAX_GROUPS, Math.ceil(x.length / 128))]]),
    );
  }

  private reduction(x: Float32Array, op: 0 | 1): Promise<number> {
    if (x.length === 0) return Promise.resolve(0);
    this.checkBytes(x.length * 4, 'the input');
    return this.run(
      () => (op === 0 ? cpu.sum(x) : cpu.max(x)),
      async (d) => {
        // Fold to at most 1024 partials in one pass, then to one in a second.
        let values = x;
        while (values.length > 1) {
          const groups = Math.min(1024, Math.ceil(values.length / 128));
          values = await this.runGpu(d, 'reduce', wgsl.REDUCE, [values], groups, new Uint32Array([values.length, op, 0xff800000, 0]), [
            [groups],
          ]);
        }
        return values[0]!;
      },
    );
  }

  private async scanGpu(d: GPUDevice, x: Float32Array): Promise<Float32Array> {
    // Scan 128-element blocks, scan the block totals (recursively), add them back.
    const blocks = Math.ceil(x.length / 128);
    const perRow = Math.min(blocks, MAX_GROUPS);
    const grid: [number, number] = [perRow, Math.ceil(blocks / perRow)];
    const params = new Uint32Array([x.length, perRow, 0, 0]);
    const [scanned, sums] = await this.scanPass(d, 'scanBlocks', wgsl.SCAN_BLOCKS, x, blocks, params, grid);
    if (blocks === 1) return scanned;
    const offsets = await this.scanGpu(d, sums!);
    return (await this.scanPass(d, 'scanAdd', wgsl.SCAN_ADD, scanned, offsets, params, grid))[0];
  }

  /** Runs `gpu`, or `cpuPath` when there is no GPU. */
  private async run<T>(cpuPath: (() => T) | undefined, gpu: (device: GPUDevice) => Promise<T>): Promise<T> {
    const device = await this.acquire();
    if (device === undefined) {
      if (cpuPath === undefined) throw new KernelError(ErrorCode.KERNEL_UNAVAILABLE, 'this kernel needs a GPU and none is available');
      this.lastPath = 'cpu';
      return cpuPath();
    }
    const result = await gpu(device);
    this.lastPath = 'gpu';
    return result;
  }

  private acquire(): Promise<GPUDevice | undefined> {
    if (this.mode === 'cpu') return Promise.resolve(undefined);
    if (this.device !== undefined) return Promise.resolve(this.device);
    if (this.noAdapter) return this.mode === 'gpu' ? Promise.reject(this.unavailable()) : Promise.resolve(undefined);
    this.opening ??= this.open().finally(() => (this.opening = undefined));
    return this.opening;
  }

  private unavailable(): KernelError {
    return new KernelError(
      ErrorCode.KERNEL_UNAVAILABLE,
      "no WebGPU adapter is available (mode 'gpu'); install a GPU driver, or Mesa for the software renderer, or use mode 'auto'",
    );
  }

  private async open(): Promise<GPUDevice | undefined> {
    // Mesa's EGL picks a display-less platform only when told; the client sets EGL_PLATFORM
    // (a worker thread's process.env does not reach the C environment).
    for (const toggles of this.backends) {
      const gpu = create(toggles);
      keepAlive.push(gpu);
      const adapter = (await gpu.requestAdapter()) ?? (await gpu.requestAdapter({ featureLevel: 'compatibility' }));
      if (adapter === null) continue;
      const device = await adapter.requestDevice({
        requiredLimits: {
          maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize,
          maxBufferSize: adapter.limits.maxBufferSize,
        },
      });
      this.adapterName = [adapter.info.vendor, adapter.info.architecture, adapter.info.description].filter((p) => p !== '').join(' ');
      this.backend = toggles;
      this.pipelines.clear();
      this.device = device;
      void device.lost.then(() => {
        if (this.device === device) {
          this.device = undefined;
          this.pipelines.clear();
        }
      });
      return device;
    }
    this.noAdapter = true;
    if (this.mode === 'gpu') throw this.unavailable();
    return undefined;
  }

  private async compile(device: GPUDevice, key: string, code: string, entryPoint: string, name?: string): Promise<GPUComputePipeline> {
    const cached = this.pipelines.get(key);
    if (cached !== undefined) return cached;
    // Captured, so that Dawn does not also print the error as an uncaptured one.
    device.pushErrorScope('validation');
    const module = device.createShaderModule({ code });
    const info = await module.getCompilationInfo();
    await device.popErrorScope();
    const errors = info.messages.filter((m) => m.type === 'error');
    const failed = (messages: string[]): KernelError =>
      new KernelError(ErrorCode.KERNEL_COMPILE, `kernel '${name ?? key}' does not compile: ${messages.join('; ')}`, {
        kernel: name ?? key,
        messages,
      });
    if (errors.length > 0) throw failed(errors.map((m) => `${m.lineNum}:${m.linePos}: ${m.message}`));
    // Synchronous creation: a pending createComputePipelineAsync when the thread ends aborts
    // the process in Dawn's node binding.
    device.pushErrorScope('validation');
    const pipeline = device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint } });
    const error = await device.popErrorScope();
    if (error !== null) throw failed([error.message]);
    this.pipelines.set(key, pipeline);
    return pipeline;
  }

  private storage(device: GPUDevice, data: Float32Array | undefined, bytes: number, extra = 0): GPUBuffer {
    const buffer = device.createBuffer({ size: Math.max(4, Math.ceil(bytes / 4) * 4), usage: STORAGE | COPY_DST | COPY_SRC | extra });
    if (data !== undefined && data.byteLength > 0) device.queue.writeBuffer(buffer, 0, ownBytes(data));
    return buffer;
  }

  private uniform(device: GPUDevice, params: Uint32Array): GPUBuffer {
    const buffer = device.createBuffer({ size: Math.max(16, Math.ceil(params.byteLength / 16) * 16), usage: UNIFORM | COPY_DST });
    device.queue.writeBuffer(buffer, 0, ownBytes(params));
    return buffer;
  }

  /** Runs one compute pass over `inputs` (+ output, + uniform) and reads `outputLength` floats back. */
  private async runGpu(
    device: GPUDevice,
    key: string,
    code: string,
    inputs: Float32Array[],
    outputLength: number,
    params: Uint32Array | undefined,
    dispatches: [number, number?, number?][],
    entryPoint = 'main',
  ): Promise<Float32Array> {
    const pipeline = await this.compile(device, key, code, entryPoint);
    const buffers = inputs.map((x) => this.storage(device, x, x.byteLength));
    const output = this.storage(device, undefined, outputLength * 4);
    const uniform = params === undefined ? undefined : this.uniform(device, params);
    const entries = [...buffers, output, ...(uniform ? [uniform] : [])].map((buffer, binding) => ({ binding, resource: { buffer } }));
    try {
      const encoder = device.createCommandEncoder();
      const pass = encoder.beginComputePass();
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries }));
      for (const [x, y, z] of dispatches) pass.dispatchWorkgroups(x, y ?? 1, z ?? 1);
      pass.end();
      return await this.readBack(device, encoder, output, outputLength);
    } finally {
      for (const b of [...buffers, output, ...(uniform ? [uniform] : [])]) b.destroy();
    }
  }

  /**
   * One pass of the scan over `data` and the block totals `sums` (bindings 0 and 1, a uniform
   * at 2): the block scan (sums written, read back too) or the adding back of the totals.
   */
  private async scanPass(
    device: GPUDevice,
    key: string,
    code: string,
    data: Float32Array,
    sums: Float32Array | number,
    params: Uint32Array,
    grid: [number, number],
  ): Promise<[Float32Array, Float32Array | undefined]> {
    const pipeline = await this.compile(device, key, code, 'main');
    const dataBuffer = this.storage(device, data, data.byteLength);
    const blocks = typeof sums === 'number' ? sums : sums.length;
    const sumsBuffer = this.storage(device, typeof sums === 'number' ? undefined : sums, blocks * 4);
    const uniform = this.uniform(device, params);
    try {
      const encoder = device.createCommandEncoder();
      const pass = encoder.beginComputePass();
      pass.setPipeline(pipeline);
      const entries = [dataBuffer, sumsBuffer, uniform].map((buffer, binding) => ({ binding, resource: { buffer } }));
      pass.setBindGroup(0, device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries }));
      pass.dispatchWorkgroups(grid[0], grid[1]);
      pass.end();
      const out = await this.readBack(device, encoder, dataBuffer, data.length);
      const totals = typeof sums === 'number' ? await this.readBack(device, device.createCommandEncoder(), sumsBuffer, blocks) : undefined;
      return [out, totals];
    } finally {
      for (const b of [dataBuffer, sumsBuffer, uniform]) b.destroy();
    }
  }

  /** Copies `length` floats of `source` out, bounded by `maxKernelMs`. */
  private async readBack(device: GPUDevice, encoder: GPUCommandEncoder, source: GPUBuffer, length: number): Promise<Float32Array> {
    const read = device.createBuffer({ size: Math.max(4, length * 4), usage: MAP_READ | COPY_DST });
    encoder.copyBufferToBuffer(source, 0, read, 0, Math.max(4, length * 4));
    // Anything the device refuses (a bind group that does not fit, a dispatch too large, out of
    // memory) would otherwise only be printed, and the read-back would be zeros.
    device.pushErrorScope('out-of-memory');
    device.pushErrorScope('validation');
    device.queue.submit([encoder.finish()]);
    const invalid = await device.popErrorScope();
    const oom = await device.popErrorScope();
    if (invalid !== null || oom !== null) {
      read.destroy();
      const message = (invalid ?? oom)!.message;
      throw argsError(`the device refused the kernel's work: ${message.split('\n')[0]}`, { message });
    }
    // Dawn's pending map does not keep Node's event loop alive by itself.
    const keepAlive = setInterval(() => {}, 1000);
    try {
      await read.mapAsync(MAP_MODE_READ);
      return new Float32Array(read.getMappedRange().slice(0, length * 4));
    } catch (err) {
      if (this.device !== device) {
        throw new KernelError(
          ErrorCode.KERNEL_DEVICE_LOST,
          'the GPU device was lost during the call; the next call creates a new one',
          {},
          { cause: err },
        );
      }
      throw err;
    } finally {
      clearInterval(keepAlive);
      read.destroy();
    }
  }
}
