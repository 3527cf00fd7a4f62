// Shared by the image filters: an image is u32 width, u32 height, then width*height RGBA bytes.
import { input, output } from "nuvola";

export const HEADER: i32 = 8;

export function clamp(v: i32): u8 {
  return <u8>(v < 0 ? 0 : v > 255 ? 255 : v);
}

/** Reads the input image, or returns null when it is malformed. */
export function readImage(): Uint8Array | null {
  const img = input();
  if (img.length < HEADER) return null;
  const w = load<u32>(img.dataStart);
  const h = load<u32>(img.dataStart + 4);
  if (<u64>w * <u64>h * 4 + <u64>HEADER != <u64>img.length) return null;
  return img;
}

/** An output image of the same size, its header written. */
export function sameSize(img: Uint8Array): Uint8Array {
  const out = new Uint8Array(img.length);
  store<u32>(out.dataStart, load<u32>(img.dataStart));
  store<u32>(out.dataStart + 4, load<u32>(img.dataStart + 4));
  return out;
}

/** A 3×3 convolution of every colour channel (edges clamp); alpha is copied. */
export function convolve(img: Uint8Array, k: StaticArray<i32>): Uint8Array {
  const w = <i32>load<u32>(img.dataStart);
  const h = <i32>load<u32>(img.dataStart + 4);
  const out = sameSize(img);
  const src = img.dataStart + HEADER;
  const dst = out.dataStart + HEADER;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      for (let c = 0; c < 3; c++) {
        let sum = 0;
        for (let dy = -1; dy <= 1; dy++) {
          const yy = min(max(y + dy, 0), h - 1);
          for (let dx = -1; dx <= 1; dx++) {
            const xx = min(max(x + dx, 0), w - 1);
            sum += <i32>load<u8>(src + <usize>((yy * w + xx) * 4 + c)) * unchecked(k[(dy + 1) * 3 + dx + 1]);
          }
        }
        store<u8>(dst + <usize>((y * w + x) * 4 + c), clamp(sum));
      }
      store<u8>(dst + <usize>((y * w + x) * 4 + 3), load<u8>(src + <usize>((y * w + x) * 4 + 3)));
    }
  }
  return out;
}

export function finish(out: Uint8Array): i32 {
  output(out);
  return 0;
}

/** Called from init(): reserves 4 MiB of heap (input and output images up to 2 MiB each) so calls do not grow memory. */
export function reserve(): void {
  heap.free(heap.alloc(4 << 20));
}
