// The piscina side of `nuvola bench suite`: runs a workload's JavaScript reference on a pool
// thread, timing it inside the task as the guests time themselves.
import { getHeapStatistics } from 'node:v8';
import { Piscina } from 'piscina';
import type { Reference, ReferenceEnv, TaskResult } from './types.js';

interface ReferenceModule {
  reference: Reference;
  /** Releases what the reference keeps between calls on a thread (a client connection). */
  close?: () => Promise<void>;
}

const loaded = new Map<string, ReferenceModule>();

/** The reference of the workload folder `name` (loaded once per thread). */
export async function loadReference(name: string): Promise<Reference> {
  let mod = loaded.get(name);
  if (mod === undefined) {
    if (!/^[a-z0-9-]+$/.test(name)) throw new Error(`not a workload folder: ${name}`);
    mod = (await import(`./${name}/reference.js`)) as ReferenceModule;
    loaded.set(name, mod);
  }
  return mod.reference;
}

/** Closes what the references loaded on this thread keep open. */
export async function closeReferences(): Promise<void> {
  for (const mod of loaded.values()) await mod.close?.();
}

const heap = (): number => {
  const h = getHeapStatistics();
  return h.used_heap_size + h.external_memory;
};

/** Runs the reference once, here: its output, the milliseconds it took, the heap in use around it. */
export async function runReference(name: string, input: Uint8Array, env: ReferenceEnv): Promise<TaskResult> {
  const ref = await loadReference(name);
  const before = heap();
  const t = performance.now();
  const output = await ref(input, env);
  const execMs = performance.now() - t;
  return { output, execMs, heapBytes: Math.max(before, heap()) };
}

/**
 * One pool task. The answer travels as one moved buffer (not a copy): f64 milliseconds, f64 heap
 * bytes, then the output — see `unpackTask`.
 */
export default async function task({ name, input, env }: { name: string; input: Uint8Array; env: ReferenceEnv }): Promise<unknown> {
  const result = await runReference(name, input, env);
  const packed = new Uint8Array(16 + result.output.byteLength);
  const head = new Float64Array(packed.buffer, 0, 2);
  head[0] = result.execMs;
  head[1] = result.heapBytes;
  packed.set(result.output, 16);
  return Piscina.move(packed);
}

/** A task's answer, unpacked on the main thread. */
export function unpackTask(packed: Uint8Array): TaskResult {
  const head = new Float64Array(packed.buffer, packed.byteOffset, 2);
  return { execMs: head[0]!, heapBytes: head[1]!, output: packed.subarray(16) };
}
