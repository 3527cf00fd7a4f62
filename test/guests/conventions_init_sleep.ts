import { sleep, outputString } from "nuvola";
// Waits in init(), which runs at register and cannot suspend.
export function init(): void {
  sleep(5);
}
export function main(): i32 {
  outputString("ok");
  return 0;
}
