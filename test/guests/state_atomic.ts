import { state, inputString, outputString } from "nuvola";
// One atomic global operation per call: "inc key delta" → the new value,
// "cas key expected value" → "1" or "0".
export function main(): i32 {
  const parts = inputString().split(" ");
  const op = parts[0];
  const key = parts[1];
  if (op == "inc") {
    outputString(state.incrementGlobal(key, I64.parseInt(parts[2])).toString());
  } else if (op == "cas") {
    outputString(state.compareAndSwapGlobal(key, I64.parseInt(parts[2]), I64.parseInt(parts[3])) ? "1" : "0");
  } else {
    return 1;
  }
  return 0;
}
