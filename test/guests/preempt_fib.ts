import { inputString, outputString } from "nuvola";
// Recursive Fibonacci of its input: no loop anywhere, so only the check at each function
// entry can interrupt it.
function fib(n: i32): i64 {
  return n < 2 ? <i64>n : fib(n - 1) + fib(n - 2);
}
export function main(): i32 {
  outputString(fib(I32.parseInt(inputString())).toString());
  return 0;
}
