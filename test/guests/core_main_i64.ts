export function main(): i64 {
  return 1;
}
