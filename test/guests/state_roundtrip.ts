import { state, output, inputString } from "nuvola";
// Writes {3,2,1,0}, reads it back, pushes, reads again; outputs both reads (8 bytes).
export function main(): i32 {
  const key = inputString();
  const v = new Uint8Array(4);
  v[0] = 3; v[1] = 2; v[2] = 1; v[3] = 0;
  state.write(key, v);
  const first = state.read(key);
  state.push(key);
  const second = state.read(key);
  const out = new Uint8Array(8);
  out.set(first, 0);
  out.set(second, 4);
  output(out);
  return 0;
}
