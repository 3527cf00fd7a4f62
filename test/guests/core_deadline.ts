import { deadline, outputString, sleep } from "nuvola";
// Reports how long it has left, sleeps 50 ms, and reports again: "before after".
export function main(): i32 {
  const before = deadline.remainingMs();
  sleep(50);
  outputString(before.toString() + " " + deadline.remainingMs().toString());
  return 0;
}
