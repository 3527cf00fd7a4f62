import { clock, inputString, outputString } from "nuvola";
// Keeps the CPU for the number of milliseconds in its input (by the monotonic clock, so the
// time does not depend on the machine's speed or load), then answers. Never suspends.
export function main(): i32 {
  const until = clock.monotonicNs() + <u64>I32.parseInt(inputString()) * 1_000_000;
  let spins: i32 = 0;
  while (clock.monotonicNs() < until) spins++;
  outputString("spun");
  return 0;
}
