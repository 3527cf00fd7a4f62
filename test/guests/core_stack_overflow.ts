function recurse(n: i32): i32 {
  return n == 0 ? 0 : recurse(n + 1) + 1;
}
export function main(): i32 {
  return recurse(1);
}
