import { inputString, outputString, log } from "nuvola";

export function main(): i32 {
  const name = inputString();
  log("greeting " + name);
  outputString("Hello " + (name.length > 0 ? name : "world"));
  return 0;
}
