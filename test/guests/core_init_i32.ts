export function init(): i32 {
  return 1;
}
export function main(): i32 {
  return 0;
}
