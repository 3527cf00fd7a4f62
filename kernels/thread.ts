/**
 * Kernel thread entry. Owns the KernelEngine (the WebGPU device and the CPU paths) so that
 * kernel work — which Dawn's OpenGL backend runs on the calling thread, and the CPU path runs
 * in JavaScript — never blocks the main thread. Requests come from the main thread and,
 * straight over ports of their own, from the runtime's workers; callers take the device in
 * turn (a queue per caller, round-robin), one call at a time. The call running is published in
 * the watch words, where the main thread times it (`maxKernelMs`); when the main thread gives
 * up on it, this thread finishes it, hands every queued request back (`retry`) and ends.
 */
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { ErrorCode, toWire } from '../runtime/errors.js';
import { ownedBuffers } from '../runtime/transfer.js';
import { KernelEngine, type EngineOptions } from './engine.js';
import {
  ABANDONED,
  publishStats,
  RUNNING,
  Watch,
  WATCH_STARTED,
  type KernelControl,
  type KernelReply,
  type KernelRequest,
  type PublishedStats,
} from './wire.js';

export interface KernelThreadData {
  engine: EngineOptions;
  watch: SharedArrayBuffer;
  stats: SharedArrayBuffer;
}

const data = workerData as KernelThreadData;
const engine = new KernelEngine(data.engine);
const main = parentPort!;
const watch = new Int32Array(data.watch, 0, 4);
const startedAt = new Float64Array(data.watch, WATCH_STARTED, 1);

interface Job extends KernelRequest {
  /** 0: the main thread; else a worker connection. */
  source: number;
}

const ports = new Map<number, MessagePort | typeof main>([[0, main]]);
const queues = new Map<string, Job[]>();
const turn: string[] = [];
let ready = false;
let running = false;
let closing = false;
let abandoned = false;
const stats: PublishedStats = { gpu: 0, cpu: 0, path: 'none', adapter: undefined, perCaller: {}, at: 0 };

/** Calls that are not kernel work, and not counted. */
const UNCOUNTED = new Set(['available', 'registerKernel', 'loseDevice']);

const ops: Record<string, (...args: never[]) => Promise<unknown>> = {
  available: () => engine.available(),
  matmulF32: (a: Float32Array, b: Float32Array, m: number, k: number, n: number) => engine.matmulF32(a, b, m, k, n),
  saxpyF32: (alpha: number, x: Float32Array, y: Float32Array) => engine.saxpyF32(alpha, x, y),
  addF32: (x: Float32Array, y: Float32Array) => engine.addF32(x, y),
  mulF32: (x: Float32Array, y: Float32Array) => engine.mulF32(x, y),
  sumF32: (x: Float32Array) => engine.sumF32(x),
  maxF32: (x: Float32Array) => engine.maxF32(x),
  scanF32: (x: Float32Array) => engine.scanF32(x),
  conv2dF32: (img: Float32Array, h: number, w: number, k: Float32Array, kh: number, kw: number) => engine.conv2dF32(img, h, w, k, kh, kw),
  registerKernel: (name: string, spec: { wgsl: string; entryPoint?: string; inputs: number; params?: boolean }) =>
    engine.registerKernel(name, spec),
  runKernel: (name: string, call: Parameters<KernelEngine['runKernel']>[1]) => engine.runKernel(name, call),
  loseDevice: () => Promise.resolve(engine.loseDevice()),
};

function send(source: number, reply: KernelReply, transfer: ArrayBuffer[] = []): void {
  ports.get(source)?.postMessage(reply, transfer);
}

function enqueue(job: Job): void {
  if (abandoned) return send(job.source, { id: job.id, retry: true, args: job.args }, ownedBuffers(job.args));
  if (closing) return send(job.source, { id: job.id, ok: false, error: closedError() });
  let queue = queues.get(job.caller);
  if (queue === undefined) {
    queues.set(job.caller, (queue = []));
    turn.push(job.caller);
  }
  queue.push(job);
  pump();
}

function closedError(): ReturnType<typeof toWire> {
  return { code: ErrorCode.CLOSED, message: 'the kernels were closed', details: {} };
}

/** Starts the next caller's next call when nothing runs. */
function pump(): void {
  if (running || !ready || abandoned) return;
  const caller = turn.shift();
  if (caller === undefined) {
    if (closing) end();
    return;
  }
  const queue = queues.get(caller)!;
  const job = queue.shift()!;
  // The caller goes to the back of the line if it has more.
  if (queue.length > 0) turn.push(caller);
  else queues.delete(caller);
  running = true;
  Atomics.store(watch, Watch.SOURCE, job.source);
  Atomics.store(watch, Watch.ID, job.id);
  startedAt[0] = performance.timeOrigin + performance.now();
  Atomics.store(watch, Watch.STATE, RUNNING);
  void run(job);
}

async function run(job: Job): Promise<void> {
  let reply: KernelReply;
  let transfer: ArrayBuffer[] = [];
  const op = ops[job.op];
  try {
    if (op === undefined) throw new Error(`unknown kernel operation '${job.op}'`);
    const value = await op(...(job.args as never[]));
    reply = { id: job.id, ok: true, value };
    if (value instanceof Float32Array) transfer = [value.buffer as ArrayBuffer];
  } catch (err) {
    reply = { id: job.id, ok: false, error: toWire(err, ErrorCode.KERNEL_ARGS) };
    // A registered kernel the device cannot run may have a CPU version where it was registered.
    if (job.op === 'runKernel' && job.source !== 0) {
      reply.args = job.args;
      transfer = ownedBuffers(job.args);
    }
  }
  running = false;
  // The main thread may have given up on this call meanwhile: then its answer goes nowhere.
  if (Atomics.compareExchange(watch, Watch.STATE, RUNNING, 0) === ABANDONED) return abandon();
  if (reply.ok) {
    const { path, adapter } = engine.stats();
    stats.adapter = adapter;
    if (!UNCOUNTED.has(job.op)) {
      if (path === 'gpu') stats.gpu++;
      else if (path === 'cpu') stats.cpu++;
      stats.path = path;
      stats.perCaller[job.caller] = (stats.perCaller[job.caller] ?? 0) + 1;
      stats.at = performance.timeOrigin + performance.now();
    }
    publishStats(data.stats, stats);
  }
  send(job.source, reply, transfer);
  pump();
}

/** Hands every queued request back to its sender (to send to the next thread) and ends. */
function abandon(): void {
  abandoned = true;
  for (const queue of queues.values()) for (const job of queue) enqueue(job);
  queues.clear();
  turn.length = 0;
  end();
}

function end(): void {
  engine.destroy();
  setImmediate(() => process.exit(0));
}

function connect(port: MessagePort, source: number): void {
  ports.set(source, port);
  port.on('message', (request: KernelRequest) => enqueue({ ...request, source }));
  port.on('close', () => {
    ports.delete(source);
    // Its worker is gone: nobody waits for what it queued.
    for (const [caller, queue] of queues) {
      const kept = queue.filter((job) => job.source !== source);
      if (kept.length > 0) queues.set(caller, kept);
      else {
        queues.delete(caller);
        turn.splice(turn.indexOf(caller), 1);
      }
    }
  });
}

main.on('message', (message: KernelRequest | KernelControl) => {
  if ('connect' in message) return connect(message.connect, message.source);
  if ('shutdown' in message) {
    // After the call running: what is queued fails with E_CLOSED.
    closing = true;
    for (const queue of queues.values()) for (const job of queue) send(job.source, { id: job.id, ok: false, error: closedError() });
    queues.clear();
    turn.length = 0;
    // Not while the device is still being opened (Dawn must not owe the thread an answer): then once it is.
    if (!running && ready) end();
    return;
  }
  enqueue({ ...message, source: 0 });
});

// Open the device first (it can take a while): calls start, and are timed, once it is.
const opened = (): void => {
  ready = true;
  main.postMessage({ ready: true, backend: engine.backend } satisfies KernelReply);
  pump();
};
engine.available().then(opened, opened);
