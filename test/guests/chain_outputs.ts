import { chain, outputString } from "nuvola";
// Acceptance case 2: two children set outputs "expected A" and "longer expected B"; the parent
// waits for each, compares the outputs, and reports them.
export function main(): i32 {
  const a = chain.call("say", Uint8Array.wrap(String.UTF8.encode("expected A")));
  const b = chain.call("say", Uint8Array.wrap(String.UTF8.encode("longer expected B")));
  if (chain.wait(b) != 0 || chain.wait(a) != 0) return 1;
  const outA = chain.outputString(a);
  const outB = chain.outputString(b);
  outputString(outA + "|" + outB);
  return outA == "expected A" && outB == "longer expected B" ? 0 : 2;
}
