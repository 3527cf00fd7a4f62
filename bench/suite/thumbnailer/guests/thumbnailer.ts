import { read, respond, start } from "../../guests/timed";

export function main(): i32 {
  const t = start();
  const input = read();
  const base = input.dataStart;
  const w = load<u32>(base);
  const h = load<u32>(base + 4);
  const tw = load<u32>(base + 8);
  const th = load<u32>(base + 12);
  const src = base + 16;
  const out = new Uint8Array(<i32>(tw * th * 4));
  const dst = out.dataStart;
  for (let ty: u32 = 0; ty < th; ty++) {
    const y0 = (ty * h) / th;
    const y1 = max(y0 + 1, ((ty + 1) * h) / th);
    for (let tx: u32 = 0; tx < tw; tx++) {
      const x0 = (tx * w) / tw;
      const x1 = max(x0 + 1, ((tx + 1) * w) / tw);
      let r: u32 = 0;
      let g: u32 = 0;
      let b: u32 = 0;
      let a: u32 = 0;
      for (let y = y0; y < y1; y++) {
        let p = src + <usize>((y * w + x0) * 4);
        for (let x = x0; x < x1; x++, p += 4) {
          r += load<u8>(p);
          g += load<u8>(p, 1);
          b += load<u8>(p, 2);
          a += load<u8>(p, 3);
        }
      }
      const n = (y1 - y0) * (x1 - x0);
      const half = n >> 1;
      const o = dst + <usize>((ty * tw + tx) * 4);
      store<u8>(o, <u8>((r + half) / n));
      store<u8>(o, <u8>((g + half) / n), 1);
      store<u8>(o, <u8>((b + half) / n), 2);
      store<u8>(o, <u8>((a + half) / n), 3);
    }
  }
  respond(t, out);
  return 0;
}
