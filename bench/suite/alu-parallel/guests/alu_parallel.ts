import { chain } from "nuvola";
import { Bytes, read, respond, start } from "../../guests/timed";

// Starts `parts` calls of alu at once (input "parts n seed": part i gets "n seed+i"), waits for
// them all and answers the XOR of their checksums.
export function main(): i32 {
  const t = start();
  const input = read();
  const p = String.UTF8.decodeUnsafe(input.dataStart, <usize>input.length).split(" ");
  const parts = I32.parseInt(p[0]);
  const seed = U32.parseInt(p[2]);
  const ids = new Array<u32>();
  for (let i = 0; i < parts; i++) ids.push(chain.call("alu", Uint8Array.wrap(String.UTF8.encode(p[1] + " " + (seed + <u32>i).toString()))));
  let acc: u32 = 0;
  for (let i = 0; i < parts; i++) {
    if (chain.wait(ids[i]) != 0) return 1;
    const out = chain.output(ids[i]);
    acc ^= U32.parseInt(String.UTF8.decodeUnsafe(out.dataStart + 8, <usize>(out.length - 8)));
  }
  const b = new Bytes(16);
  b.uint(acc);
  respond(t, b.view());
  return 0;
}
