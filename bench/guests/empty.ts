// The smallest useful guest: returns 0 with no output. Used to measure the runtime's own cost.
export function main(): i32 {
  return 0;
}
