import { state, output, inputString } from "nuvola";
// The 7-byte partial push/pull case; outputs readAt(0, 5) then the final value (12 bytes).
export function main(): i32 {
  const key = inputString();
  const v = new Uint8Array(7);
  for (let i = 0; i < 7; i++) v[i] = <u8>i;
  state.write(key, v);
  state.push(key);
  const a = new Uint8Array(3);
  a.fill(5);
  state.writeAt(key, 0, a);
  const b = new Uint8Array(2);
  b.fill(6);
  state.writeAt(key, 2, b);
  state.pushPartial(key);
  state.pull(key);
  const head = state.readAt(key, 0, 5);
  const all = state.read(key);
  const out = new Uint8Array(12);
  out.set(head, 0);
  out.set(all, 5);
  output(out);
  return 0;
}
