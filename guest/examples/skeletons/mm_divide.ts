import { input, output, frames } from "nuvola";
import { header, copyBlock, reserve } from "./_matrix";
// Splits C = A × B into 8 products of half size: for block (i, j) of C and k in {0, 1},
// the subproblem (A_ik, B_kj), in the order ((i * 2 + j) * 2 + k).
export function init(): void {
  reserve();
}
export function main(): i32 {
  const p = input();
  const n = header(p);
  if (n < 2 || n % 2 != 0 || p.length != 4 + 8 * n * n) return 1;
  const h = n / 2;
  const a = p.dataStart + 4;
  const b = a + <usize>(n * n * 4);
  const subs = new Array<Uint8Array>(0);
  for (let i = 0; i < 2; i++) {
    for (let j = 0; j < 2; j++) {
      for (let k = 0; k < 2; k++) {
        const sub = new Uint8Array(4 + 8 * h * h);
        store<u32>(sub.dataStart, <u32>h);
        copyBlock(a, n, i, k, sub.dataStart + 4);
        copyBlock(b, n, k, j, sub.dataStart + 4 + <usize>(h * h * 4));
        subs.push(sub);
      }
    }
  }
  output(frames.join(subs));
  return 0;
}
