import { readImage, sameSize, finish, HEADER, reserve } from "./_image";
// Grayscale: every channel becomes the pixel's luminance (integer BT.601 weights).
export function init(): void {
  reserve();
}
export function main(): i32 {
  const img = readImage();
  if (img == null) return 1;
  const out = sameSize(img);
  const n = (img.length - HEADER) / 4;
  const src = img.dataStart + HEADER;
  const dst = out.dataStart + HEADER;
  for (let i = 0; i < n; i++) {
    const p = <usize>(i * 4);
    const y = <u8>((<i32>load<u8>(src + p) * 77 + <i32>load<u8>(src + p + 1) * 150 + <i32>load<u8>(src + p + 2) * 29) >> 8);
    store<u8>(dst + p, y);
    store<u8>(dst + p + 1, y);
    store<u8>(dst + p + 2, y);
    store<u8>(dst + p + 3, load<u8>(src + p + 3));
  }
  return finish(out);
}
