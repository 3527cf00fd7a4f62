// GPU kernels (import module "nuvola:kernels", see abi.ts): the host's kernel library on one
// WebGPU device shared by every function, with a CPU path when there is no GPU. Each call
// suspends this instance while the kernel runs; its worker keeps serving others.
import { frames } from "./frames";

// @ts-ignore: decorator (AssemblyScript's; TypeScript allows none on a declared function)
@external("nuvola:kernels", "available")
declare function k_available(): i32;
// @ts-ignore: decorator (AssemblyScript's; TypeScript allows none on a declared function)
@external("nuvola:kernels", "matmul_f32")
declare function k_matmul(a: usize, b: usize, m: i32, k: i32, n: i32, out: usize): void;
// @ts-ignore: decorator (AssemblyScript's; TypeScript allows none on a declared function)
@external("nuvola:kernels", "saxpy_f32")
declare function k_saxpy(alpha: f32, x: usize, y: usize, n: i32, out: usize): void;
// @ts-ignore: decorator (AssemblyScript's; TypeScript allows none on a declared function)
@external("nuvola:kernels", "add_f32")
declare function k_add(x: usize, y: usize, n: i32, out: usize): void;
// @ts-ignore: decorator (AssemblyScript's; TypeScript allows none on a declared function)
@external("nuvola:kernels", "mul_f32")
declare function k_mul(x: usize, y: usize, n: i32, out: usize): void;
// @ts-ignore: decorator (AssemblyScript's; TypeScript allows none on a declared function)
@external("nuvola:kernels", "sum_f32")
declare function k_sum(x: usize, n: i32): f32;
// @ts-ignore: decorator (AssemblyScript's; TypeScript allows none on a declared function)
@external("nuvola:kernels", "max_f32")
declare function k_max(x: usize, n: i32): f32;
// @ts-ignore: decorator (AssemblyScript's; TypeScript allows none on a declared function)
@external("nuvola:kernels", "scan_f32")
declare function k_scan(x: usize, n: i32, out: usize): void;
// @ts-ignore: decorator (AssemblyScript's; TypeScript allows none on a declared function)
@external("nuvola:kernels", "conv2d_f32")
declare function k_conv2d(img: usize, h: i32, w: i32, kernel: usize, kh: i32, kw: i32, out: usize): void;
// @ts-ignore: decorator (AssemblyScript's; TypeScript allows none on a declared function)
@external("nuvola:kernels", "run")
declare function k_run(
  name: usize, nameLen: i32, inputs: usize, inputsLen: i32, params: usize, paramsLen: i32,
  gx: i32, gy: i32, gz: i32, out: usize, outLen: i32,
): void;

/** GPU kernels: static methods only. Errors trap the invocation with an E_KERNEL_* code; arrays of the wrong length abort (E_GUEST_ABORT). */
export abstract class kernels {
  /** Whether the kernels run on a GPU here (false: on the host's CPU path). */
  static available(): bool {
    return k_available() != 0;
  }

  /** a (m×k) · b (k×n), row-major. */
  static matmulF32(a: Float32Array, b: Float32Array, m: i32, k: i32, n: i32): Float32Array {
    if (m < 1 || k < 1 || n < 1 || a.length != m * k || b.length != k * n) abort("kernels.matmulF32: a must hold m*k and b k*n floats, m, k, n >= 1");
    const out = new Float32Array(m * n);
    k_matmul(a.dataStart, b.dataStart, m, k, n, out.dataStart);
    return out;
  }

  /** alpha · x + y. */
  static saxpyF32(alpha: f32, x: Float32Array, y: Float32Array): Float32Array {
    if (x.length != y.length) abort("kernels.saxpyF32: x and y differ in length");
    const out = new Float32Array(x.length);
    k_saxpy(alpha, x.dataStart, y.dataStart, x.length, out.dataStart);
    return out;
  }

  static addF32(x: Float32Array, y: Float32Array): Float32Array {
    if (x.length != y.length) abort("kernels.addF32: x and y differ in length");
    const out = new Float32Array(x.length);
    k_add(x.dataStart, y.dataStart, x.length, out.dataStart);
    return out;
  }

  static mulF32(x: Float32Array, y: Float32Array): Float32Array {
    if (x.length != y.length) abort("kernels.mulF32: x and y differ in length");
    const out = new Float32Array(x.length);
    k_mul(x.dataStart, y.dataStart, x.length, out.dataStart);
    return out;
  }

  static sumF32(x: Float32Array): f32 {
    return k_sum(x.dataStart, x.length);
  }

  static maxF32(x: Float32Array): f32 {
    return k_max(x.dataStart, x.length);
  }

  /** Inclusive prefix sums. */
  static scanF32(x: Float32Array): Float32Array {
    const out = new Float32Array(x.length);
    k_scan(x.dataStart, x.length, out.dataStart);
    return out;
  }

  /** Same-size 2-D convolution of an h×w image with a kh×kw kernel (odd sizes), zeros outside. */
  static conv2dF32(img: Float32Array, h: i32, w: i32, kernel: Float32Array, kh: i32, kw: i32): Float32Array {
    if (h < 1 || w < 1 || kh < 1 || kw < 1 || img.length != h * w || kernel.length != kh * kw) abort("kernels.conv2dF32: img must hold h*w and kernel kh*kw floats");
    const out = new Float32Array(h * w);
    k_conv2d(img.dataStart, h, w, kernel.dataStart, kh, kw, out.dataStart);
    return out;
  }

  /** Runs the kernel the host registered as `name` on `inputs` with (gx, gy, gz) workgroups. */
  static run(
    name: string, inputs: Array<Float32Array>, outputLength: i32,
    gx: i32, gy: i32 = 1, gz: i32 = 1, params: Uint32Array = new Uint32Array(0),
  ): Float32Array {
    const n = String.UTF8.encode(name);
    const parts = new Array<Uint8Array>(inputs.length);
    for (let i = 0; i < inputs.length; i++) parts[i] = Uint8Array.wrap(inputs[i].buffer, inputs[i].byteOffset, inputs[i].byteLength);
    const framed = frames.join(parts);
    const out = new Float32Array(outputLength);
    k_run(changetype<usize>(n), n.byteLength, framed.dataStart, framed.length, params.dataStart, params.length, gx, gy, gz, out.dataStart, outputLength);
    return out;
  }
}
