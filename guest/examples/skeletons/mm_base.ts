import { input, output } from "nuvola";
import { header, reserve } from "./_matrix";
// C = A × B, the plain triple loop (i, k, j order).
export function init(): void {
  reserve();
}
export function main(): i32 {
  const p = input();
  const n = header(p);
  if (p.length != 4 + 8 * n * n) return 1;
  const a = p.dataStart + 4;
  const b = a + <usize>(n * n * 4);
  const out = new Uint8Array(4 + 4 * n * n);
  store<u32>(out.dataStart, <u32>n);
  const c = out.dataStart + 4;
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < n; k++) {
      const aik = load<i32>(a + <usize>((i * n + k) * 4));
      const brow = b + <usize>(k * n * 4);
      const crow = c + <usize>(i * n * 4);
      for (let j = 0; j < n; j++) {
        const at = <usize>(j * 4);
        store<i32>(crow + at, load<i32>(crow + at) + aik * load<i32>(brow + at));
      }
    }
  }
  output(out);
  return 0;
}
