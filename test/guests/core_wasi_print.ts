import { outputString } from "nuvola";

// @ts-ignore: decorator
@external("wasi_snapshot_preview1", "fd_write")
declare function fd_write(fd: u32, iovs: usize, count: usize, written: usize): u16;

// An SDK guest that also writes to WASI's stdout: for it, stdout is log lines, not output.
export function main(): i32 {
  const msg = String.UTF8.encode("to stdout\nand a partial line");
  const iov = memory.data(8);
  store<u32>(iov, <u32>changetype<usize>(msg));
  store<u32>(iov, <u32>msg.byteLength, 4);
  fd_write(1, iov, 1, memory.data(4));
  outputString("the output");
  return 0;
}
