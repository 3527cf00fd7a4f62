import { input, output } from "nuvola";
// Outputs its input: what the cost model's transport calibration (α, β) measures with.
export function main(): i32 {
  output(input());
  return 0;
}
