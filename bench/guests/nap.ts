import { inputString, outputString, sleep } from "nuvola";
// Sleeps for the number of milliseconds in its input (suspended: its worker serves other calls), then answers.
export function main(): i32 {
  const ms = I32.parseInt(inputString());
  sleep(ms);
  outputString("slept " + ms.toString());
  return 0;
}
