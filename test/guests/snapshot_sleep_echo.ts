import { inputString, outputString, sleep } from "nuvola";
// Suspends first, then reads its input and echoes it: run many at once, each must see its own
// input after resuming (host imports must know which instance calls them).
export function main(): i32 {
  sleep(1);
  const first = inputString();
  sleep(1);
  outputString(first + "|" + inputString());
  return 0;
}
