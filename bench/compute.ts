/**
 * The compute-heavy workloads `bench limits` and `bench metering` time on one warm instance each
 * (bench/guests/compute.ts), and the one way they time a call: call, finish, reset.
 */
import { fileURLToPath } from 'node:url';
import { buildGuest } from 'nuvola';
import type { GuestInstance } from '../runtime/worker/instance.js';

const source = fileURLToPath(new URL('../../bench/guests/compute.ts', import.meta.url));

export interface Workload {
  name: string;
  input: Uint8Array;
}

/** The compute guest, built with -O3, and its three workloads. */
export async function computeGuest(): Promise<{ wasm: Uint8Array; workloads: Workload[] }> {
  const wasm = await buildGuest(source, { optimizeLevel: 3 });
  const input = (s: string): Uint8Array => new TextEncoder().encode(s);
  const workloads = [
    { name: 'Mandelbrot row (640 px × 2000 iterations)', input: input('mandel 2000') },
    { name: 'recursive fib(27)', input: input('fib 27') },
    { name: 'tight array loop (400 × 4096 elements)', input: input('array 400') },
  ];
  return { wasm, workloads };
}

/** Mean milliseconds per call of `calls` warm calls (each followed by the instance's reset). */
export function callMs(instance: GuestInstance, bytes: Uint8Array, calls: number): number {
  const t = performance.now();
  for (let i = 0; i < calls; i++) {
    instance.call(bytes, i + 1, Infinity);
    instance.finish();
    instance.reset();
  }
  return (performance.now() - t) / calls;
}
