import { chain, input, output, outputString, frames } from "nuvola";
// Input: a framed list [name, payload]. Calls `name` with `payload` through chain.call and
// answers the callee's output and return code; when the call failed, "FAILED " and the error,
// return code -1.
export function main(): i32 {
  const parts = frames.split(input());
  if (parts.length != 2) return -2;
  const name = String.UTF8.decodeUnsafe(parts[0].dataStart, <usize>parts[0].length);
  const id = chain.call(name, parts[1]);
  const code = chain.wait(id);
  if (code == chain.FAILED) {
    outputString("FAILED " + chain.outputString(id));
    return -1;
  }
  output(chain.output(id));
  return code;
}
