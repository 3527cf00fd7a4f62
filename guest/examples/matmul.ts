import { input, outputString, kernels } from "nuvola";
// Multiplies two n×n matrices on the GPU (or the host's CPU path) and reports a checksum.
// Input: n as text.
export function main(): i32 {
  const n = I32.parseInt(String.UTF8.decode(input().buffer));
  const a = new Float32Array(n * n);
  const b = new Float32Array(n * n);
  for (let i = 0; i < n * n; i++) {
    a[i] = <f32>(i % 3);
    b[i] = <f32>(i % 5) * 0.5;
  }
  const c = kernels.matmulF32(a, b, n, n, n);
  outputString(
    "c[0] = " + c[0].toString() + ", sum of c = " + kernels.sumF32(c).toString() + " (" + (kernels.available() ? "GPU" : "CPU") + ")",
  );
  return 0;
}
