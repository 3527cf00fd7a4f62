import { input, output } from "nuvola";
// Mandelbrot, one row per call. Input: u32 row, width, height, maxIter (little-endian).
// Output: the iteration count of every pixel of the row, u16 each. The plane is
// x in [-2, 1], y in [-1.2, 1.2].
export function main(): i32 {
  const args = input();
  if (args.length != 16) return 1;
  const row = load<u32>(args.dataStart);
  const width = load<u32>(args.dataStart + 4);
  const height = load<u32>(args.dataStart + 8);
  const maxIter = load<u32>(args.dataStart + 12);
  const out = new Uint8Array(<i32>width * 2);
  const cy = -1.2 + (2.4 * <f64>row) / <f64>height;
  for (let x: u32 = 0; x < width; x++) {
    const cx = -2.0 + (3.0 * <f64>x) / <f64>width;
    let zx = 0.0;
    let zy = 0.0;
    let i: u32 = 0;
    while (i < maxIter && zx * zx + zy * zy <= 4.0) {
      const t = zx * zx - zy * zy + cx;
      zy = 2.0 * zx * zy + cy;
      zx = t;
      i++;
    }
    store<u16>(out.dataStart + <usize>(x * 2), <u16>i);
  }
  output(out);
  return 0;
}
