/**
 * Kernel thread entry. Owns the KernelEngine (the WebGPU device and the CPU paths) so that
 * kernel work — which Dawn's OpenGL backend runs on the calling thread, and the CPU path runs
 * in JavaScript — never blocks the main thread. Runs one request at a time, in arrival order.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { toWire } from '../runtime/errors.js';
import { ErrorCode } from '../runtime/errors.js';
import { KernelEngine, type EngineOptions } from './engine.js';

export interface KernelRequest {
  id: number;
  op: string;
  args: unknown[];
}

export type KernelReply =
  | { id: number; ok: true; value: unknown; path: 'gpu' | 'cpu' | 'none'; adapter: string | undefined }
  | { id: number; ok: false; error: ReturnType<typeof toWire> }
  /** The device is open (or there is none); `backend`: the toggles that found the adapter. */
  | { ready: true; backend: string[] | undefined };

const engine = new KernelEngine(workerData as EngineOptions);
const port = parentPort!;
// Open the device first (it can take a while): the client starts its per-call clocks only
// once this thread says it is ready.
let chain: Promise<void> = engine.available().then(
  () => port.postMessage({ ready: true, backend: engine.backend } satisfies KernelReply),
  () => port.postMessage({ ready: true, backend: undefined } satisfies KernelReply),
);

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
  // After everything queued before it: release the device and end this thread.
  shutdown: () => {
    engine.destroy();
    setImmediate(() => process.exit(0));
    return Promise.resolve();
  },
};

port.on('message', (request: KernelRequest) => {
  chain = chain.then(async () => {
    const op = ops[request.op];
    try {
      if (op === undefined) throw new Error(`unknown kernel operation '${request.op}'`);
      const value = await op(...(request.args as never[]));
      const { path, adapter } = engine.stats();
      const transfer = value instanceof Float32Array ? [value.buffer as ArrayBuffer] : [];
      port.postMessage({ id: request.id, ok: true, value, path, adapter } satisfies KernelReply, transfer);
    } catch (err) {
      port.postMessage({ id: request.id, ok: false, error: toWire(err, ErrorCode.KERNEL_ARGS) } satisfies KernelReply);
    }
  });
});
