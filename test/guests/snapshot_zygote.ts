import { log, outputString } from "nuvola";
// The zygote case: globals start at A=0, B=2; init() adds 5 and 100 and runs once per
// registration (its log line shows it), however many instances are restored.
let a: i32 = 0;
let b: i32 = 2;
let calls: i32 = 0;
export function init(): void {
  a += 5;
  b += 100;
  log("init ran");
}
export function main(): i32 {
  calls++;
  outputString(a.toString() + "," + b.toString() + "," + calls.toString());
  return 0;
}
