// Top-level code runs when an instance starts; this one traps there.
const table = new Array<i32>(4);
const broken = table[10];
export function main(): i32 {
  return broken;
}
