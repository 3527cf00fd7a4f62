import { chain, inputString, outputString } from "nuvola";
// "<n> <kib>": calls "blob" <n> times for <kib> KiB each, waits for all, and reports each
// call's output size, or its error code when it failed.
export function main(): i32 {
  const parts = inputString().split(" ");
  const n = I32.parseInt(parts[0]);
  const ids = new Array<u32>(0);
  for (let i = 0; i < n; i++) ids.push(chain.call("blob", Uint8Array.wrap(String.UTF8.encode(parts[1]))));
  let report = "";
  for (let i = 0; i < n; i++) {
    const code = chain.wait(ids[i]);
    if (i > 0) report += ",";
    if (code == chain.FAILED) report += chain.outputString(ids[i]).split(":")[0];
    else report += chain.output(ids[i]).length.toString();
  }
  outputString(report);
  return 0;
}
