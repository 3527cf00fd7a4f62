import { inputString, log, sleep, outputString } from "nuvola";
// Logs, sleeps for the number of milliseconds in its input, logs again.
export function main(): i32 {
  const ms = I32.parseInt(inputString());
  log("before " + ms.toString());
  sleep(ms);
  log("after " + ms.toString());
  outputString("slept " + ms.toString());
  return 0;
}
