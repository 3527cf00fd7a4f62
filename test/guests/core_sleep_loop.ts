import { inputString, sleep, log } from "nuvola";
// Sleeps for the milliseconds in its input, then spins forever: it must never resume after a
// timeout cancelled it.
let spins: i64 = 0;
export function main(): i32 {
  sleep(I32.parseInt(inputString()));
  log("resumed");
  while (true) spins++;
  return 0;
}
