export function start(): i32 {
  return 0;
}
