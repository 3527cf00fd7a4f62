import { inputString, outputString } from "nuvola";
// Burns CPU for the number of million iterations in its input, then answers.
let acc: u64 = 0;
export function main(): i32 {
  const millions = I32.parseInt(inputString());
  for (let m = 0; m < millions; m++) {
    for (let i = 0; i < 1000000; i++) acc = acc * 6364136223846793005 + 1442695040888963407;
  }
  outputString("busy " + (acc & 1).toString());
  return 0;
}
