import { readImage, sameSize, clamp, finish, HEADER, reserve } from "./_image";
// Raises saturation by half: each channel moves away from the pixel's gray value.
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
    const r = <i32>load<u8>(src + p);
    const g = <i32>load<u8>(src + p + 1);
    const b = <i32>load<u8>(src + p + 2);
    const gray = (r * 77 + g * 150 + b * 29) >> 8;
    store<u8>(dst + p, clamp(gray + ((r - gray) * 3) / 2));
    store<u8>(dst + p + 1, clamp(gray + ((g - gray) * 3) / 2));
    store<u8>(dst + p + 2, clamp(gray + ((b - gray) * 3) / 2));
    store<u8>(dst + p + 3, load<u8>(src + p + 3));
  }
  return finish(out);
}
