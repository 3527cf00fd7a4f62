// 256 KiB of static data: the module's initial memory is at least 5 pages.
const DATA = memory.data(262144);
export function main(): i32 {
  return load<u8>(DATA);
}
