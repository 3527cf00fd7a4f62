import { chain, inputString, outputString, sleep } from "nuvola";
// "<name> <depth> <ms>": a recursive fan-out. At depth 0 it sleeps <ms> ms; otherwise it
// calls itself (registered as <name>) twice with depth - 1 and waits for both.
export function main(): i32 {
  const parts = inputString().split(" ");
  const depth = I32.parseInt(parts[1]);
  if (depth == 0) {
    sleep(I32.parseInt(parts[2]));
    outputString("leaf");
    return 0;
  }
  const next = Uint8Array.wrap(String.UTF8.encode(parts[0] + " " + (depth - 1).toString() + " " + parts[2]));
  const a = chain.call(parts[0], next);
  const b = chain.call(parts[0], next);
  const codes = chain.wait(a) | chain.wait(b);
  outputString(codes == 0 ? "ok" : "failed");
  return codes == 0 ? 0 : 1;
}
