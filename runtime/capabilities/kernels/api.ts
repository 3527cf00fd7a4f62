/**
 * Both threads. The GPU kernel calls a guest makes, as its worker sends them: each names the
 * calling function (`caller`; callers take the device in turn) and carries copies of the
 * guest's arrays, which are moved, not copied, on the way. A worker sends them straight to
 * the kernel thread over the line `connect` gives it (port.ts); the main thread's service
 * answers `connect`, and runs a registered kernel's CPU version when the device cannot.
 */
import type { KernelConnection } from '../../../kernels/index.js';

export type { KernelConnection };
export interface KernelsApi {
  /** A line straight to the kernel thread, for this worker's later calls (kernels/index.ts, `connect`). */
  connect(): KernelConnection;
  available(caller: string): boolean;
  matmulF32(caller: string, a: Float32Array, b: Float32Array, m: number, k: number, n: number): Float32Array;
  saxpyF32(caller: string, alpha: number, x: Float32Array, y: Float32Array): Float32Array;
  addF32(caller: string, x: Float32Array, y: Float32Array): Float32Array;
  mulF32(caller: string, x: Float32Array, y: Float32Array): Float32Array;
  sumF32(caller: string, x: Float32Array): number;
  maxF32(caller: string, x: Float32Array): number;
  scanF32(caller: string, x: Float32Array): Float32Array;
  conv2dF32(caller: string, img: Float32Array, h: number, w: number, kernel: Float32Array, kh: number, kw: number): Float32Array;
  runKernel(caller: string, name: string, call: GuestKernelCall): Float32Array;
}

/** A guest's call of a registered kernel. */
export interface GuestKernelCall {
  inputs: Float32Array[];
  outputLength: number;
  params: Uint32Array;
  workgroups: [number, number, number];
}
