// A guest padded with a large constant table, to time register-to-first-result for a ~100 KB module.
import { outputString } from "nuvola";

const TABLE: StaticArray<u64> = [PADDING];

export function main(): i32 {
  outputString("ok " + TABLE.length.toString());
  return 0;
}
