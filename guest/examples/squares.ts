import { chain, inputString, outputString } from "nuvola";
// Chaining: called with "n", fans out calls to itself with "square k" for k = 1..n, waits for
// them, and outputs the sum of squares. Called with "square k", outputs k².
export function main(): i32 {
  const args = inputString().split(" ");
  if (args[0] == "square") {
    const k = I32.parseInt(args[1]);
    outputString((k * k).toString());
    return 0;
  }
  const n = I32.parseInt(args[0]);
  const ids = new Array<u32>(0);
  for (let k = 1; k <= n; k++) ids.push(chain.call("squares", Uint8Array.wrap(String.UTF8.encode("square " + k.toString()))));
  let sum = 0;
  for (let i = 0; i < ids.length; i++) {
    if (chain.wait(ids[i]) != 0) return 1;
    sum += I32.parseInt(chain.outputString(ids[i]));
  }
  outputString("sum of squares 1.." + n.toString() + " = " + sum.toString());
  return 0;
}
