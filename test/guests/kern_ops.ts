import { input, output, outputString, kernels } from "nuvola";
// Kernel calls from a guest. Input: an op byte, then f32 data:
//  1 matmul: u32 m, k, n, then a (m*k) and b (k*n) → out (m*n)
//  2 sum: x → one f32      3 scan: x → out      4 saxpy: f32 alpha, u32 n, x (n), y (n) → out
//  5 conv2d: u32 h, w, kh, kw, img (h*w), kernel (kh*kw) → out     6 available → "1"/"0"
//  7 run "twice" on x → out     8 max: x → one f32
function f32s(data: Uint8Array, at: i32, n: i32): Float32Array {
  const out = new Float32Array(n);
  memory.copy(out.dataStart, data.dataStart + <usize>at, <usize>n * 4);
  return out;
}
function u32at(data: Uint8Array, i: i32): i32 {
  return <i32>load<u32>(data.dataStart + 4 + <usize>i * 4);
}
function bytes(x: Float32Array): Uint8Array {
  return Uint8Array.wrap(x.buffer, x.byteOffset, x.byteLength);
}
export function main(): i32 {
  const data = input();
  const op = data[0];
  if (op == 1) {
    const m = u32at(data, 0), k = u32at(data, 1), n = u32at(data, 2);
    const a = f32s(data, 16, m * k);
    const b = f32s(data, 16 + m * k * 4, k * n);
    output(bytes(kernels.matmulF32(a, b, m, k, n)));
  } else if (op == 2 || op == 8) {
    const x = f32s(data, 4, (data.length - 4) / 4);
    const r = new Float32Array(1);
    r[0] = op == 2 ? kernels.sumF32(x) : kernels.maxF32(x);
    output(bytes(r));
  } else if (op == 3) {
    output(bytes(kernels.scanF32(f32s(data, 4, (data.length - 4) / 4))));
  } else if (op == 4) {
    const alpha = load<f32>(data.dataStart + 4);
    const n = u32at(data, 1);
    output(bytes(kernels.saxpyF32(alpha, f32s(data, 12, n), f32s(data, 12 + n * 4, n))));
  } else if (op == 5) {
    const h = u32at(data, 0), w = u32at(data, 1), kh = u32at(data, 2), kw = u32at(data, 3);
    const img = f32s(data, 20, h * w);
    const ker = f32s(data, 20 + h * w * 4, kh * kw);
    output(bytes(kernels.conv2dF32(img, h, w, ker, kh, kw)));
  } else if (op == 6) {
    outputString(kernels.available() ? "1" : "0");
  } else if (op == 7) {
    const x = f32s(data, 4, (data.length - 4) / 4);
    output(bytes(kernels.run("twice", [x], x.length, (x.length + 63) / 64)));
  } else {
    return 1;
  }
  return 0;
}
