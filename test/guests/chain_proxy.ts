import { chain, inputString, outputString } from "nuvola";
// Calls the function named by the first word of its input with the rest of it; outputs the
// callee's return code (or FAILED) and its output.
export function main(): i32 {
  const text = inputString();
  const space = text.indexOf(" ");
  const target = space < 0 ? text : text.substring(0, space);
  const rest = space < 0 ? "" : text.substring(space + 1);
  const id = chain.call(target, Uint8Array.wrap(String.UTF8.encode(rest)));
  const code = chain.wait(id);
  outputString((code == chain.FAILED ? "FAILED" : code.toString()) + " " + chain.outputString(id));
  return 0;
}
