import { log } from "nuvola";
// Logs 1000 lines of 1000 characters.
export function main(): i32 {
  const line = "x".repeat(1000);
  for (let i = 0; i < 1000; i++) log(line);
  return 0;
}
