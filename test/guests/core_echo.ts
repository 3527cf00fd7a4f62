import { input, output } from "nuvola";
// Echoes its input bytes reversed, and returns their count as the return code.
export function main(): i32 {
  const data = input();
  const out = new Uint8Array(data.length);
  for (let i = 0; i < data.length; i++) out[i] = data[data.length - 1 - i];
  output(out);
  return data.length;
}
