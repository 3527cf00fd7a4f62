import { read, respond, start } from "../../guests/timed";

// The squiggle of bench/suite/dna-visualisation/reference.ts.
export function main(): i32 {
  const t = start();
  const input = read();
  const n = input.length;
  const out = new Uint8Array(8 * (1 + 2 * n));
  let at = out.dataStart + 8;
  let y: f64 = 0;
  for (let i = 0; i < n; i++) {
    const c = load<u8>(input.dataStart + <usize>i);
    let mid = y;
    if (c == 65) mid = y + 0.5;
    else if (c == 84) mid = y - 0.5;
    else if (c == 71) {
      mid = y + 0.5;
      y += 1;
    } else if (c == 67) {
      mid = y - 0.5;
      y -= 1;
    }
    store<f64>(at, mid);
    store<f64>(at, y, 8);
    at += 16;
  }
  respond(t, out);
  return 0;
}
