import { inputString } from "nuvola";
@external("nuvola:io", "output_write")
declare function output_write(ptr: usize, len: i32): void;
@external("nuvola:io", "input_read")
declare function input_read(ptr: usize, len: i32): i32;
@external("nuvola:io", "log")
declare function log_raw(ptr: usize, len: i32): void;
// Hands host imports ranges outside its memory; each must trap this guest only.
export function main(): i32 {
  const mode = inputString();
  if (mode == "past-end") output_write(memory.size() * 65536 - 4, 64);
  else if (mode == "huge-pointer") log_raw(0xfffffff0, 32);
  else if (mode == "negative-length") output_write(16, -1);
  else if (mode == "write-past-end") input_read(memory.size() * 65536 - 2, 8);
  return 0;
}
