import { chain, inputString, outputString } from "nuvola";
// Chaining faults, by input: "unknown" calls a function nobody registered; "trap" calls one that
// traps; "slow" calls one that outlives its timeout; "loop" one that spins past it; "badid" waits
// on an id it never got. Outputs
// wait's code and the call's output.
export function main(): i32 {
  const mode = inputString();
  if (mode == "badid") return chain.wait(7);
  const target = mode == "unknown" ? "nobody" : mode == "trap" ? "trapper" : mode == "loop" ? "looper" : "sleeper";
  const id = chain.call(target, Uint8Array.wrap(String.UTF8.encode(mode == "loop" ? "loop" : "300")));
  const code = chain.wait(id);
  outputString((code == chain.FAILED ? "FAILED" : code.toString()) + " " + chain.outputString(id));
  return 0;
}
