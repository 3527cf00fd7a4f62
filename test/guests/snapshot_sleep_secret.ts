import { input, outputString, sleep } from "nuvola";
// "W" + 16 bytes + ms: writes the bytes into a static buffer, sleeps (so several instances are
// alive at once), answers. "R" + ms: sleeps, then shows the buffer ('.' for zero bytes).
const area = new Uint8Array(20000);
export function main(): i32 {
  const arg = input();
  if (arg[0] == 0x57) {
    for (let i = 0; i < 16; i++) area[100 + i] = arg[1 + i];
    sleep(<i32>arg[17]);
    outputString("written");
    return 0;
  }
  if (arg.length > 1) sleep(<i32>arg[1]);
  let s = "";
  for (let i = 0; i < 16; i++) s += String.fromCharCode(area[100 + i] == 0 ? 46 : area[100 + i]);
  outputString(s);
  return 0;
}
