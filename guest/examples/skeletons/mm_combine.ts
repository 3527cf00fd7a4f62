import { input, output, frames } from "nuvola";
import { header, reserve } from "./_matrix";
// Joins the 8 half-size products of mm_divide: C_ij = P(i, j, 0) + P(i, j, 1).
export function init(): void {
  reserve();
}
export function main(): i32 {
  const parts = frames.split(input());
  if (parts.length != 8) return 1;
  const h = header(parts[0]);
  const n = h * 2;
  const out = new Uint8Array(4 + 4 * n * n);
  store<u32>(out.dataStart, <u32>n);
  const c = out.dataStart + 4;
  for (let i = 0; i < 2; i++) {
    for (let j = 0; j < 2; j++) {
      const p0 = parts[(i * 2 + j) * 2].dataStart + 4;
      const p1 = parts[(i * 2 + j) * 2 + 1].dataStart + 4;
      for (let r = 0; r < h; r++) {
        for (let col = 0; col < h; col++) {
          const at = <usize>((r * h + col) * 4);
          store<i32>(c + <usize>(((i * h + r) * n + j * h + col) * 4), load<i32>(p0 + at) + load<i32>(p1 + at));
        }
      }
    }
  }
  output(out);
  return 0;
}
