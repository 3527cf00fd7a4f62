export function main(): i32 {
  return load<i32>(0xfffffff0);
}
