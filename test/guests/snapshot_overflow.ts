// Isolation probe for a trap right at a bulk write (found by a review). "O" d p: recurse
// d levels (through p pad levels first), then memory.fill 64 bytes with 0x41. "R": count them.
import { input, outputString } from "nuvola";
const buf = new Uint8Array(8192);
@inline function fillIt(): void { memory.fill(buf.dataStart + 4096, 0x41, 64); }
function g(): i32 { fillIt(); return 1; }
function f(n: i32): i32 { if (n == 0) return g(); return f(n - 1) + 1; }
function pad(k: i32, n: i32): i32 { if (k == 0) return f(n); return pad(k - 1, n) + 2; }
export function main(): i32 {
  const arg = input();
  if (arg[0] == 0x4f) {
    const d = load<i32>(arg.dataStart + 1);
    const p = load<i32>(arg.dataStart + 5);
    return pad(p, d);
  }
  let c = 0;
  for (let i = 0; i < 64; i++) if (buf[4096 + i] == 0x41) c++;
  outputString(c.toString());
  return 0;
}
