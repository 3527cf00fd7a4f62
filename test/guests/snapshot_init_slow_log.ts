import { log, outputString } from "nuvola";
// init() burns CPU for a while, then logs once: the log shows how often it ran.
let acc: u64 = 0;
export function init(): void {
  for (let i = 0; i < 200000000; i++) acc = acc * 6364136223846793005 + 1442695040888963407;
  log("init ran");
}
export function main(): i32 {
  outputString((acc & 1).toString());
  return 0;
}
