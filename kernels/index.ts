/**
 * Main thread. GPU kernels for the runtime and the embedding service: a library (tiled
 * matmul, saxpy/add/mul, sum/max, prefix scan, 2-D convolution) and WGSL kernels the service
 * registers, on one WebGPU device per process, with a CPU path for every library kernel.
 * Knows nothing of Wasm.
 *
 * The device and all kernel work live on one kernel thread (thread.ts → engine.ts): Dawn's
 * OpenGL backend (Mesa's software renderer) runs GPU work on the calling thread, and the CPU
 * path is JavaScript, so neither may block the main thread. The runtime's workers send their
 * guests' calls straight to that thread over lines of their own (`connect`); the thread queues
 * calls per caller, from every source, and runs them round-robin, one at a time: a caller with
 * many calls does not starve one with few. A call whose work takes longer than `maxKernelMs`
 * (watched here, from the words the thread writes) fails with `E_KERNEL_TIMEOUT`; the thread
 * (and its device) is replaced, and the next call starts a new one with every registered
 * kernel compiled again.
 */
import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';
import { ErrorCode, fromWire, KernelError, RuntimeClosedError, type WireError } from '../runtime/errors.js';
import { ownedBuffers } from '../runtime/transfer.js';
import type { EngineOptions, KernelSpec } from './engine.js';
import type { KernelThreadData } from './thread.js';
import {
  ABANDONED,
  readStats,
  RUNNING,
  STATS_BYTES,
  Watch,
  WATCH_BYTES,
  WATCH_STARTED,
  type KernelControl,
  type KernelReply,
  type KernelRequest,
  type PublishedStats,
} from './wire.js';

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
  caller: string;
  /** The arguments' arrays belong to this call alone: move them to the thread instead of copying. */
  owned?: boolean;
  resolve: (value: unknown) => void;
  reject: (err: unknown) => void;
  /** The thread it was sent to. */
  thread?: Worker;
}

/** A worker's direct line to the kernel thread (see {@link Kernels.connect}). */
export interface KernelConnection {
  /** Requests go here, straight to the kernel thread; replies come back on it. */
  port: MessagePort;
  /** Messages from the main thread about the connection's calls (see {@link ConnectionNotice}). */
  control: MessagePort;
}

/** What the main thread tells a worker about its connection's calls. */
export type ConnectionNotice =
  /** The call `id` ran past maxKernelMs. */
  | { expired: number; error: WireError }
  /** The thread is being replaced: connect again for new calls (queued ones come back as `retry`). */
  | { stale: true }
  /** The thread stopped: every call on the connection failed with `error`. */
  | { lost: true; error: WireError };

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

/** The counts the thread publishes (kernels/wire.ts), kept per thread. */
type Counts = PublishedStats;

const now = (): number => performance.timeOrigin + performance.now();

export class Kernels {
  private readonly maxKernelMs: number;
  private engineOptions: EngineOptions;
  private worker: Worker | undefined;
  /** The running thread's watch words and published stats (wire.ts). */
  private watch: { words: Int32Array; startedAt: Float64Array } | undefined;
  private published: SharedArrayBuffer | undefined;
  private watchdog: NodeJS.Timeout | undefined;
  private readonly registered = new Map<string, KernelSpec>();
  /** The main thread's calls sent to a thread and not answered, by request id. */
  private readonly pending = new Map<number, Job>();
  /** Calls waiting for a thread (while an abandoned one drains). */
  private readonly waiting: Job[] = [];
  /** Workers' connections to the running thread, by source number, with the port to tell them things. */
  private readonly connections = new Map<number, MessagePort>();
  private nextSource = 1;
  private nextId = 1;
  /** A thread left to finish a timed-out call: no new thread starts until it has ended. */
  private draining: Promise<void> | undefined;
  private drainingWorker: Worker | undefined;
  private closed = false;
  private losses = 0;
  /** What threads before the running one counted, and the main thread's own CPU calls. */
  private readonly earlier: Counts = { gpu: 0, cpu: 0, path: 'none', adapter: undefined, perCaller: {}, at: 0 };

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
      this.earlier.cpu++;
      this.earlier.path = 'cpu';
      this.earlier.at = now();
      return result;
    }
  }

  stats(): KernelsStats {
    const running = this.published === undefined ? undefined : readStats(this.published);
    const perCaller = { ...this.earlier.perCaller };
    for (const [caller, n] of Object.entries(running?.perCaller ?? {})) perCaller[caller] = (perCaller[caller] ?? 0) + n;
    const later = running !== undefined && running.at >= this.earlier.at ? running : this.earlier;
    return {
      path: later.path,
      adapter: running?.adapter ?? this.earlier.adapter,
      gpuCalls: this.earlier.gpu + (running?.gpu ?? 0),
      cpuCalls: this.earlier.cpu + (running?.cpu ?? 0),
      deviceLosses: this.losses,
      perCaller,
    };
  }

  /** @internal Loses the device on purpose (tests of the recovery path). */
  loseDevice(): Promise<void> {
    return this.call('host', 'loseDevice', []).then(() => {
      this.losses++;
    });
  }

  /** Ends the kernel thread once its current call is done; calls still queued or running reject with `E_CLOSED`. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const closed = new RuntimeClosedError(ErrorCode.CLOSED, 'the kernels were closed');
    for (const job of [...this.waiting.splice(0), ...this.pending.values()]) job.reject(closed);
    this.pending.clear();
    for (const control of this.connections.values()) control.close();
    this.connections.clear();
    const worker = this.worker;
    this.forget();
    // Not terminate(): ending the thread while Dawn owes it an answer aborts the process.
    if (worker !== undefined) {
      const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
      worker.ref();
      worker.postMessage({ shutdown: true } satisfies KernelControl);
      await exited;
    }
  }

  /**
   * @internal A call whose arrays nobody else holds (the runtime's copies of a guest's
   * arguments): they are moved to the kernel thread, not copied. `method` is a library method
   * or `runKernel`.
   */
  callOwned(caller: string, method: string, args: unknown[]): Promise<unknown> {
    return this.call(caller, method, args, true);
  }

  /**
   * @internal A line from a worker of the runtime straight to the kernel thread: its guests'
   * calls then cross two threads, not four (through here). Waits while a timed-out thread drains.
   */
  async connect(): Promise<KernelConnection> {
    while (this.draining !== undefined) await this.draining;
    if (this.closed) throw new RuntimeClosedError(ErrorCode.CLOSED, 'the kernels were closed');
    const thread = this.thread();
    const source = this.nextSource++;
    const data = new MessageChannel();
    const control = new MessageChannel();
    thread.postMessage({ connect: data.port2, source } satisfies KernelControl, [data.port2]);
    control.port1.unref();
    this.connections.set(source, control.port1);
    return { port: data.port1, control: control.port2 };
  }

  private call(caller: string, op: string, args: unknown[], owned = false): Promise<unknown> {
    if (this.closed) return Promise.reject(new RuntimeClosedError(ErrorCode.CLOSED, 'the kernels were closed'));
    return new Promise((resolve, reject) => this.send({ op, args, caller, owned, resolve, reject }));
  }

  /** Sends a call to the thread (which takes callers in turn), or keeps it until a draining thread has ended. */
  private send(job: Job): void {
    // On a renderer that serialises the device (Mesa's), a new thread would only wait behind
    // the abandoned one — and time out in turn. Start the next one when it has ended.
    if (this.draining !== undefined) {
      this.waiting.push(job);
      // Calls are waiting on it: it keeps the process alive meanwhile.
      this.drainingWorker?.ref();
      return;
    }
    const worker = this.thread();
    const id = this.nextId++;
    job.thread = worker;
    this.pending.set(id, job);
    // A call in flight keeps the process alive; an idle kernel thread does not.
    worker.ref();
    try {
      const request: KernelRequest = { id, op: job.op, args: job.args, caller: job.caller };
      worker.postMessage(request, job.owned === true ? ownedBuffers(job.args) : []);
    } catch (err) {
      // Arguments that cannot cross to the thread (a detached array): this call fails, the queue goes on.
      this.answered(id);
      job.reject(
        new KernelError(
          ErrorCode.KERNEL_ARGS,
          `the arguments cannot be sent to the kernel thread: ${(err as Error).message}`,
          {},
          { cause: err },
        ),
      );
    }
  }

  /** Forgets request `id`; returns its job. */
  private answered(id: number): Job | undefined {
    const job = this.pending.get(id);
    this.pending.delete(id);
    if (job !== undefined && this.pending.size === 0 && this.worker !== undefined) this.worker.unref();
    return job;
  }

  private thread(): Worker {
    if (this.worker !== undefined) return this.worker;
    // Mesa's EGL needs a display-less platform on a machine without a display. Set here, on the
    // main thread: a worker's process.env is its own copy and never reaches the C environment.
    process.env['EGL_PLATFORM'] ??= 'surfaceless';
    const watch = new SharedArrayBuffer(WATCH_BYTES);
    const published = new SharedArrayBuffer(STATS_BYTES);
    const worker = new Worker(THREAD, { workerData: { engine: this.engineOptions, watch, stats: published } satisfies KernelThreadData });
    worker.unref();
    worker.on('message', (reply: KernelReply) => this.onReply(worker, reply));
    worker.on('error', (err) => this.lost(worker, err));
    worker.on('exit', () => this.exited(worker));
    this.worker = worker;
    this.watch = { words: new Int32Array(watch, 0, 4), startedAt: new Float64Array(watch, WATCH_STARTED, 1) };
    this.published = published;
    const period = Math.max(5, Math.min(250, this.maxKernelMs / 10));
    this.watchdog = setInterval(() => this.check(), period);
    this.watchdog.unref();
    // A new thread has a new engine: compile the registered kernels there first.
    for (const [name, spec] of this.registered) {
      worker.postMessage({ id: 0, op: 'registerKernel', args: [name, portableSpec(spec)], caller: 'host' } satisfies KernelRequest);
    }
    return worker;
  }

  private onReply(worker: Worker, reply: KernelReply): void {
    if ('ready' in reply) {
      // Later threads go straight to the backend that worked (on a machine without a GPU,
      // trying Vulkan first costs time and fills stderr with the loader's complaints).
      if (worker === this.worker && reply.backend !== undefined) this.engineOptions.backends = [reply.backend];
      return;
    }
    const job = this.answered(reply.id);
    if (job === undefined) return;
    if ('retry' in reply) this.send(job);
    else if (reply.ok) job.resolve(reply.value);
    else job.reject(fromWire(reply.error));
  }

  /** The watchdog: gives up on a call running past maxKernelMs. */
  private check(): void {
    const watch = this.watch;
    if (watch === undefined || Atomics.load(watch.words, Watch.STATE) !== RUNNING) return;
    if (now() - watch.startedAt[0]! <= this.maxKernelMs) return;
    // The thread may finish the call right now: whoever changes the state first decides.
    if (Atomics.compareExchange(watch.words, Watch.STATE, RUNNING, ABANDONED) !== RUNNING) return;
    const source = Atomics.load(watch.words, Watch.SOURCE);
    const id = Atomics.load(watch.words, Watch.ID);
    this.losses++;
    const error = new KernelError(
      ErrorCode.KERNEL_TIMEOUT,
      `a kernel call ran longer than maxKernelMs=${this.maxKernelMs}; new calls go to a new kernel thread and device`,
      { maxKernelMs: this.maxKernelMs },
    );
    if (source === 0) this.answered(id)?.reject(error);
    else this.connections.get(source)?.postMessage({ expired: id, error: error.toWire() } satisfies ConnectionNotice);
    // GPU work cannot be stopped, and ending a thread while Dawn still owes it an answer
    // aborts the process: the old thread finishes, hands back what it has queued (`retry`)
    // and ends by itself; new calls go to a new thread with a new device once it has.
    const worker = this.worker!;
    this.notify({ stale: true });
    this.forget();
    this.drainingWorker = worker;
    this.draining = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
  }

  /** Tells every connection of the running thread, and forgets them. */
  private notify(notice: ConnectionNotice): void {
    for (const control of this.connections.values()) {
      control.postMessage(notice);
      control.close();
    }
    this.connections.clear();
  }

  /** Counts what the running thread published into the earlier threads' counts, and lets it go. */
  private forget(): void {
    const counted = this.published === undefined ? undefined : readStats(this.published);
    if (counted !== undefined) {
      this.earlier.gpu += counted.gpu;
      this.earlier.cpu += counted.cpu;
      this.earlier.adapter = counted.adapter ?? this.earlier.adapter;
      if (counted.at >= this.earlier.at) {
        this.earlier.path = counted.path;
        this.earlier.at = counted.at;
      }
      for (const [caller, n] of Object.entries(counted.perCaller))
        this.earlier.perCaller[caller] = (this.earlier.perCaller[caller] ?? 0) + n;
    }
    clearInterval(this.watchdog);
    this.watchdog = undefined;
    this.worker = undefined;
    this.watch = undefined;
    this.published = undefined;
  }

  private exited(worker: Worker): void {
    if (worker === this.worker) return this.lost(worker, new Error('the kernel thread exited'));
    if (worker !== this.drainingWorker) return;
    this.draining = undefined;
    this.drainingWorker = undefined;
    // Calls it never answered nor handed back go to the next thread.
    for (const [id, job] of this.pending) {
      if (job.thread !== worker) continue;
      this.pending.delete(id);
      this.waiting.push(job);
    }
    for (const job of this.waiting.splice(0)) this.send(job);
  }

  private lost(worker: Worker, err: Error): void {
    if (worker !== this.worker) return;
    const words = this.watch!.words;
    const running = Atomics.load(words, Watch.STATE) === RUNNING;
    const source = Atomics.load(words, Watch.SOURCE);
    const current = Atomics.load(words, Watch.ID);
    const error = new KernelError(
      ErrorCode.KERNEL_DEVICE_LOST,
      `the kernel thread stopped: ${err.message}; the next call starts a new one`,
      {},
      { cause: err },
    );
    // The workers' calls went with the thread (their arrays were moved there).
    this.notify({ lost: true, error: error.toWire() });
    this.forget();
    if (running) this.losses++;
    // The main thread's own calls still have their arguments: the one running fails, the others go to the next thread.
    for (const [id, job] of [...this.pending]) {
      if (job.thread !== worker) continue;
      this.pending.delete(id);
      if (running && source === 0 && id === current) job.reject(error);
      else this.send(job);
    }
  }
}
