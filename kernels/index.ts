/**
 * Main thread. GPU kernels for the runtime and the embedding service: a library (tiled
 * matmul, saxpy/add/mul, sum/max, prefix scan, 2-D convolution) and WGSL kernels the service
 * registers, on one WebGPU device per process, with a CPU path for every library kernel.
 * Knows nothing of Wasm.
 *
 * The device and all kernel work live on one kernel thread (thread.ts → engine.ts): Dawn's
 * OpenGL backend (Mesa's software renderer) runs GPU work on the calling thread, and the CPU
 * path is JavaScript, so neither may block the main thread. Calls are queued per caller and
 * sent to the thread round-robin, one at a time: a caller with many calls does not starve one
 * with few. A call whose work takes longer than `maxKernelMs` fails with `E_KERNEL_TIMEOUT`;
 * the thread (and its device) is replaced, and the next call starts a new one with every
 * registered kernel compiled again.
 */
import { Worker } from 'node:worker_threads';
import { ErrorCode, fromWire, KernelError, RuntimeClosedError } from '../runtime/errors.js';
import { ownedBuffers } from '../runtime/transfer.js';
import type { EngineOptions, KernelSpec } from './engine.js';
import type { KernelReply, KernelRequest } from './thread.js';

export type { KernelSpec } from './engine.js';

/** How long one kernel call may take unless `maxKernelMs` says otherwise (the runtime's `kernels.maxKernelMs` default too). */
export const DEFAULT_MAX_KERNEL_MS = 10_000;

export interface KernelsOptions extends EngineOptions {
  /** A call (its GPU or CPU work) taking longer fails with `E_KERNEL_TIMEOUT`, in milliseconds. Default {@link DEFAULT_MAX_KERNEL_MS}. */
  maxKernelMs?: number;
}

export interface KernelsStats {
  /** Which path the last call took: `'gpu'`, `'cpu'` (no adapter, or `mode: 'cpu'`), or `'none'` yet. */
  path: 'gpu' | 'cpu' | 'none';
  /** The adapter in use, when there is one. */
  adapter: string | undefined;
  gpuCalls: number;
  cpuCalls: number;
  /** Devices lost or replaced after a timeout. */
  deviceLosses: number;
  /** Calls completed per caller. */
  perCaller: Record<string, number>;
}

interface Job {
  op: string;
  args: unknown[];
  /** The arguments' arrays belong to this call alone: move them to the thread instead of copying. */
  owned?: boolean;
  resolve: (value: unknown) => void;
  reject: (err: unknown) => void;
}

const THREAD = new URL('./thread.js', import.meta.url);

/** What of a spec crosses to the kernel thread (a function cannot). */
function portableSpec(spec: KernelSpec): Omit<KernelSpec, 'cpu'> {
  return {
    wgsl: spec.wgsl,
    inputs: spec.inputs,
    ...(spec.entryPoint === undefined ? {} : { entryPoint: spec.entryPoint }),
    ...(spec.params === undefined ? {} : { params: spec.params }),
  };
}

export class Kernels {
  private readonly maxKernelMs: number;
  private engineOptions: EngineOptions;
  private worker: Worker | undefined;
  private readonly registered = new Map<string, KernelSpec>();
  private readonly queues = new Map<string, Job[]>();
  private readonly turn: string[] = [];
  private current: { id: number; job: Job; caller: string; timer: NodeJS.Timeout | undefined } | undefined;
  /** Whether the kernel thread has opened its device (calls are timed from then on). */
  private ready = false;
  private nextId = 1;
  /** A thread left to finish a timed-out call: no new thread starts until it has ended. */
  private draining: Promise<void> | undefined;
  private drainingWorker: Worker | undefined;
  private closed = false;
  private readonly counts = { gpu: 0, cpu: 0, losses: 0 };
  private path: 'gpu' | 'cpu' | 'none' = 'none';
  private adapter: string | undefined;
  private readonly perCaller = new Map<string, number>();

  constructor(options: KernelsOptions = {}) {
    const { maxKernelMs, ...engine } = options;
    this.maxKernelMs = maxKernelMs ?? DEFAULT_MAX_KERNEL_MS;
    this.engineOptions = engine;
  }

  /** Whether library kernels run on a GPU here (creates the device on first use). */
  available(): Promise<boolean> {
    return this.call('host', 'available', []) as Promise<boolean>;
  }

  matmulF32(a: Float32Array, b: Float32Array, m: number, k: number, n: number, caller = 'host'): Promise<Float32Array> {
    return this.call(caller, 'matmulF32', [a, b, m, k, n]) as Promise<Float32Array>;
  }

  /** alpha · x + y. */
  saxpyF32(alpha: number, x: Float32Array, y: Float32Array, caller = 'host'): Promise<Float32Array> {
    return this.call(caller, 'saxpyF32', [alpha, x, y]) as Promise<Float32Array>;
  }

  addF32(x: Float32Array, y: Float32Array, caller = 'host'): Promise<Float32Array> {
    return this.call(caller, 'addF32', [x, y]) as Promise<Float32Array>;
  }

  mulF32(x: Float32Array, y: Float32Array, caller = 'host'): Promise<Float32Array> {
    return this.call(caller, 'mulF32', [x, y]) as Promise<Float32Array>;
  }

  sumF32(x: Float32Array, caller = 'host'): Promise<number> {
    return this.call(caller, 'sumF32', [x]) as Promise<number>;
  }

  maxF32(x: Float32Array, caller = 'host'): Promise<number> {
    return this.call(caller, 'maxF32', [x]) as Promise<number>;
  }

  /** Inclusive prefix sums. */
  scanF32(x: Float32Array, caller = 'host'): Promise<Float32Array> {
    return this.call(caller, 'scanF32', [x]) as Promise<Float32Array>;
  }

  /** Same-size 2-D convolution of an h×w image with a kh×kw kernel (odd sizes), zeros outside. */
  conv2dF32(img: Float32Array, h: number, w: number, kernel: Float32Array, kh: number, kw: number, caller = 'host'): Promise<Float32Array> {
    return this.call(caller, 'conv2dF32', [img, h, w, kernel, kh, kw]) as Promise<Float32Array>;
  }

  /**
   * Compiles a WGSL kernel now and keeps it under `name` (`E_KERNEL_COMPILE` with the
   * compiler's messages when it does not compile). Without a GPU a kernel with a `cpu`
   * version runs that (on the main thread: keep it small); one without fails with
   * `E_KERNEL_UNAVAILABLE`.
   */
  async registerKernel(name: string, spec: KernelSpec): Promise<void> {
    if (this.registered.has(name))
      throw new KernelError(ErrorCode.KERNEL_ARGS, `a kernel named '${name}' is already registered`, { kernel: name });
    const cpu = spec.cpu;
    try {
      await this.call('host', 'registerKernel', [name, portableSpec(spec)]);
    } catch (err) {
      // No GPU: a kernel with a CPU version is still usable.
      if (!(err instanceof KernelError && err.code === ErrorCode.KERNEL_UNAVAILABLE && cpu !== undefined)) throw err;
    }
    this.registered.set(name, spec);
  }

  /** Runs a registered kernel with `workgroups` (x, y, z); resolves with its `outputLength` floats. */
  async runKernel(
    name: string,
    call: { inputs: Float32Array[]; outputLength: number; params?: Uint32Array; workgroups: [number, number?, number?] },
    caller = 'host',
  ): Promise<Float32Array> {
    const spec = this.registered.get(name);
    if (spec === undefined)
      throw new KernelError(ErrorCode.KERNEL_UNKNOWN, `no kernel named '${name}' is registered; registerKernel() it first`, {
        kernel: name,
      });
    try {
      return (await this.call(caller, 'runKernel', [name, call])) as Float32Array;
    } catch (err) {
      const noGpu = err instanceof KernelError && (err.code === ErrorCode.KERNEL_UNAVAILABLE || err.code === ErrorCode.KERNEL_UNKNOWN);
      if (!noGpu || spec.cpu === undefined) throw err;
      const result = spec.cpu(call.inputs, call.params ?? new Uint32Array(4));
      if (!(result instanceof Float32Array) || result.length !== call.outputLength) {
        throw new KernelError(
          ErrorCode.KERNEL_ARGS,
          `the cpu version of kernel '${name}' must return a Float32Array of outputLength=${call.outputLength} values`,
          {
            kernel: name,
          },
        );
      }
      this.counts.cpu++;
      this.path = 'cpu';
      return result;
    }
  }

  stats(): KernelsStats {
    return {
      path: this.path,
      adapter: this.adapter,
      gpuCalls: this.counts.gpu,
      cpuCalls: this.counts.cpu,
      deviceLosses: this.counts.losses,
      perCaller: Object.fromEntries(this.perCaller),
    };
  }

  /** @internal Loses the device on purpose (tests of the recovery path). */
  loseDevice(): Promise<void> {
    return this.call('host', 'loseDevice', []).then(() => {
      this.counts.losses++;
    });
  }

  /** Ends the kernel thread once its current call is done; calls still queued or running reject with `E_CLOSED`. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const closed = new RuntimeClosedError(ErrorCode.CLOSED, 'the kernels were closed');
    for (const queue of this.queues.values()) for (const job of queue.splice(0)) job.reject(closed);
    this.queues.clear();
    this.turn.length = 0;
    if (this.current !== undefined) {
      clearTimeout(this.current.timer);
      this.current.job.reject(closed);
      this.current = undefined;
    }
    const worker = this.worker;
    this.worker = undefined;
    // Not terminate(): ending the thread while Dawn owes it an answer aborts the process.
    if (worker !== undefined) await this.retire(worker, true);
  }

  /**
   * @internal A call whose arrays nobody else holds (the runtime's copies of a guest's
   * arguments): they are moved to the kernel thread, not copied. `method` is a library method
   * or `runKernel`.
   */
  callOwned(caller: string, method: string, args: unknown[]): Promise<unknown> {
    return this.call(caller, method, args, true);
  }

  private call(caller: string, op: string, args: unknown[], owned = false): Promise<unknown> {
    if (this.closed) return Promise.reject(new RuntimeClosedError(ErrorCode.CLOSED, 'the kernels were closed'));
    return new Promise((resolve, reject) => {
      let queue = this.queues.get(caller);
      if (queue === undefined) {
        this.queues.set(caller, (queue = []));
        this.turn.push(caller);
      }
      queue.push({ op, args, owned, resolve, reject });
      this.pump();
    });
  }

  /** Sends the next caller's next call when nothing is running. */
  private pump(): void {
    if (this.current !== undefined || this.closed) return;
    // On a renderer that serialises the device (Mesa's), a new thread would only wait behind
    // the abandoned one — and time out in turn. Start the next one when it has ended.
    if (this.worker === undefined && this.draining !== undefined && this.turn.length > 0) {
      // Calls are waiting on it: it keeps the process alive meanwhile.
      this.drainingWorker?.ref();
      return;
    }
    if (this.turn.length === 0) {
      this.worker?.unref();
      return;
    }
    const caller = this.turn.shift()!;
    const queue = this.queues.get(caller)!;
    const job = queue.shift()!;
    // The caller goes to the back of the line if it has more.
    if (queue.length > 0) this.turn.push(caller);
    else this.queues.delete(caller);
    const id = this.nextId++;
    this.current = { id, job, caller, timer: undefined };
    if (this.worker !== undefined && this.ready) this.startClock();
    const worker = this.thread();
    // A call in flight keeps the process alive; an idle kernel thread does not.
    worker.ref();
    try {
      worker.postMessage({ id, op: job.op, args: job.args } satisfies KernelRequest, job.owned === true ? ownedBuffers(job.args) : []);
    } catch (err) {
      // Arguments that cannot cross to the thread (a detached array): this call fails, the queue goes on.
      clearTimeout(this.current.timer);
      this.current = undefined;
      job.reject(
        new KernelError(
          ErrorCode.KERNEL_ARGS,
          `the arguments cannot be sent to the kernel thread: ${(err as Error).message}`,
          {},
          { cause: err },
        ),
      );
      queueMicrotask(() => this.pump());
    }
  }

  private thread(): Worker {
    if (this.worker !== undefined) return this.worker;
    // Mesa's EGL needs a display-less platform on a machine without a display. Set here, on the
    // main thread: a worker's process.env is its own copy and never reaches the C environment.
    process.env['EGL_PLATFORM'] ??= 'surfaceless';
    const worker = new Worker(THREAD, { workerData: this.engineOptions });
    worker.unref();
    this.ready = false;
    worker.on('message', (reply: KernelReply) => {
      if ('ready' in reply) {
        if (worker !== this.worker) return;
        this.ready = true;
        // Later threads go straight to the backend that worked (on a machine without a GPU,
        // trying Vulkan first costs time and fills stderr with the loader's complaints).
        if (reply.backend !== undefined) this.engineOptions.backends = [reply.backend];
        if (this.current !== undefined && this.current.timer === undefined) this.startClock();
        return;
      }
      this.settle(worker, reply);
    });
    worker.on('error', (err) => this.lost(worker, err));
    worker.on('exit', () => this.lost(worker, new Error('the kernel thread exited')));
    this.worker = worker;
    // A new thread has a new engine: compile the registered kernels there first.
    for (const [name, spec] of this.registered) {
      worker.postMessage({ id: 0, op: 'registerKernel', args: [name, portableSpec(spec)] } satisfies KernelRequest);
    }
    return worker;
  }

  private startClock(): void {
    const current = this.current!;
    current.timer = setTimeout(() => this.expire(current.id), this.maxKernelMs);
  }

  private settle(worker: Worker, reply: Exclude<KernelReply, { ready: true; backend: string[] | undefined }>): void {
    if (worker !== this.worker || this.current === undefined || reply.id !== this.current.id) return;
    const { job, caller, timer } = this.current;
    clearTimeout(timer);
    this.current = undefined;
    if (reply.ok) {
      if (job.op !== 'available' && job.op !== 'registerKernel' && job.op !== 'loseDevice') {
        if (reply.path === 'gpu') this.counts.gpu++;
        else if (reply.path === 'cpu') this.counts.cpu++;
        this.path = reply.path;
        this.perCaller.set(caller, (this.perCaller.get(caller) ?? 0) + 1);
      }
      this.adapter = reply.adapter;
      job.resolve(reply.value);
    } else {
      job.reject(fromWire(reply.error));
    }
    this.pump();
  }

  private expire(id: number): void {
    if (this.current?.id !== id) return;
    const { job } = this.current;
    this.current = undefined;
    this.counts.losses++;
    // GPU work cannot be stopped, and ending a thread while Dawn still owes it an answer
    // aborts the process: leave the old thread to finish and end itself; new calls go to a
    // new thread with a new device.
    const worker = this.worker;
    this.worker = undefined;
    if (worker !== undefined) {
      const draining = this.retire(worker).then(() => {
        if (this.draining === draining) {
          this.draining = undefined;
          this.drainingWorker = undefined;
        }
        this.pump();
      });
      this.draining = draining;
      this.drainingWorker = worker;
    }
    job.reject(
      new KernelError(
        ErrorCode.KERNEL_TIMEOUT,
        `a kernel call ran longer than maxKernelMs=${this.maxKernelMs}; new calls go to a new kernel thread and device`,
        {
          maxKernelMs: this.maxKernelMs,
        },
      ),
    );
    this.pump();
  }

  /**
   * Lets `worker` finish what it has and end by itself; resolves when it has. `wait`: the
   * process stays up until then (close); otherwise an abandoned thread does not hold it.
   */
  private retire(worker: Worker, wait = false): Promise<void> {
    const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
    if (wait) worker.ref();
    else worker.unref();
    worker.postMessage({ id: 0, op: 'shutdown', args: [] } satisfies KernelRequest);
    return exited;
  }

  private lost(worker: Worker, err: Error): void {
    if (worker !== this.worker) return;
    this.worker = undefined;
    if (this.current === undefined) return;
    const { job, timer } = this.current;
    clearTimeout(timer);
    this.current = undefined;
    this.counts.losses++;
    job.reject(
      new KernelError(
        ErrorCode.KERNEL_DEVICE_LOST,
        `the kernel thread stopped: ${err.message}; the next call starts a new one`,
        {},
        { cause: err },
      ),
    );
    this.pump();
  }
}
