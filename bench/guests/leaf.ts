// Returns 1.
export function main(): i32 {
  return 1;
}
