import { input, output } from "nuvola";
// Echoes its input, except: a first byte 13 traps (unreachable), a first byte 7 returns 7
// with no output.
export function main(): i32 {
  const data = input();
  if (data.length > 0 && data[0] == 13) unreachable();
  if (data.length > 0 && data[0] == 7) return 7;
  output(data);
  return 0;
}
