export function main(): i32 {
  unreachable();
  return 0;
}
