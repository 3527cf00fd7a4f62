// SeBS 210.thumbnailer in JavaScript: raw RGBA in, a box-filtered (area-averaged) RGBA thumbnail out.
// Input: u32 width, height, thumbnail width, thumbnail height (little-endian), then width × height × 4 bytes.

export function reference(input: Uint8Array): Uint8Array {
  const head = new DataView(input.buffer, input.byteOffset, 16);
  const w = head.getUint32(0, true);
  const h = head.getUint32(4, true);
  const tw = head.getUint32(8, true);
  const th = head.getUint32(12, true);
  const src = input.subarray(16);
  const out = new Uint8Array(tw * th * 4);
  for (let ty = 0; ty < th; ty++) {
    const y0 = Math.floor((ty * h) / th);
    const y1 = Math.max(y0 + 1, Math.floor(((ty + 1) * h) / th));
    for (let tx = 0; tx < tw; tx++) {
      const x0 = Math.floor((tx * w) / tw);
      const x1 = Math.max(x0 + 1, Math.floor(((tx + 1) * w) / tw));
      let r = 0;
      let g = 0;
      let b = 0;
      let a = 0;
      for (let y = y0; y < y1; y++) {
        let p = (y * w + x0) * 4;
        for (let x = x0; x < x1; x++, p += 4) {
          r += src[p]!;
          g += src[p + 1]!;
          b += src[p + 2]!;
          a += src[p + 3]!;
        }
      }
      const n = (y1 - y0) * (x1 - x0);
      const half = n >> 1;
      const o = (ty * tw + tx) * 4;
      out[o] = Math.floor((r + half) / n);
      out[o + 1] = Math.floor((g + half) / n);
      out[o + 2] = Math.floor((b + half) / n);
      out[o + 3] = Math.floor((a + half) / n);
    }
  }
  return out;
}
