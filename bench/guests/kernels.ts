import { input, output, kernels } from "nuvola";
// The kernel benchmark's guest. Input: u32 op, u32 n, u32 repeat.
//  op 1: n×n matmul of generated matrices, `repeat` times; output: c[0] and c[n*n-1].
//  op 2: sum of n generated floats, `repeat` times; output: the sum.
// The data is made here, so the call moves only the kernel's own arguments.
export function main(): i32 {
  const args = input();
  const op = load<u32>(args.dataStart);
  const n = <i32>load<u32>(args.dataStart + 4);
  const repeat = <i32>load<u32>(args.dataStart + 8);
  const out = new Float32Array(2);
  if (op == 1) {
    const a = new Float32Array(n * n);
    const b = new Float32Array(n * n);
    for (let i = 0; i < n * n; i++) {
      a[i] = <f32>((i % 7) - 3) * 0.25;
      b[i] = <f32>((i % 5) - 2) * 0.5;
    }
    for (let r = 0; r < repeat; r++) {
      const c = kernels.matmulF32(a, b, n, n, n);
      out[0] = c[0];
      out[1] = c[n * n - 1];
    }
  } else if (op == 2) {
    const x = new Float32Array(n);
    for (let i = 0; i < n; i++) x[i] = <f32>((i % 11) - 5) * 0.125;
    for (let r = 0; r < repeat; r++) out[0] = kernels.sumF32(x);
  } else {
    return 1;
  }
  output(Uint8Array.wrap(out.buffer));
  return 0;
}
