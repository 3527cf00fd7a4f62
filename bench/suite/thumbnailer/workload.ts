import { sameBytes, type Size, type Workload } from '../types.js';
import { Xorshift32 } from '../random.js';

// SeBS resizes photos to 200 × 200 at most; the images here are generated: gradients, rings and noise.
const DIMS: Record<Size, [number, number, number, number]> = {
  test: [64, 48, 16, 12],
  small: [1024, 768, 200, 150],
  large: [2560, 1920, 200, 150],
};

export function image(size: Size): Uint8Array {
  const [w, h, tw, th] = DIMS[size];
  const r = new Xorshift32(210 + w);
  const bytes = new Uint8Array(16 + w * h * 4);
  const head = new DataView(bytes.buffer);
  [w, h, tw, th].forEach((v, i) => head.setUint32(i * 4, v, true));
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const p = 16 + (y * w + x) * 4;
      const ring = Math.floor(Math.hypot(x - w / 2, y - h / 3) / 7) & 1;
      bytes[p] = (x * 255) / w + (r.next() & 15);
      bytes[p + 1] = (y * 255) / h + (r.next() & 15);
      bytes[p + 2] = ring * 200 + (r.next() & 31);
      bytes[p + 3] = 255 - (r.next() & 7);
    }
  }
  return bytes;
}

export const workload: Workload = {
  name: 'thumbnailer',
  origin: 'SeBS 210.thumbnailer',
  summary: 'raw RGBA image in, an area-averaged thumbnail out (integer arithmetic)',
  guests: ['thumbnailer'],
  input: image,
  check: sameBytes('thumbnailer'),
};
