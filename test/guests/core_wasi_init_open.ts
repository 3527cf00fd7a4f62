import { outputString } from "nuvola";

// @ts-ignore: decorator
@external("wasi_snapshot_preview1", "path_open")
declare function path_open(fd: u32, dirflags: u32, path: usize, pathLen: usize, oflags: u32, rights: u64, inheriting: u64, fdflags: u32, opened: usize): u16;

let opened: u32 = 0;
let err: u16 = 0;

// An SDK guest that opens a file of its grant in init() and never closes it: the host closes
// it when start-up ends (a snapshot cannot hold host files).
export function init(): void {
  const path = String.UTF8.encode("hello.txt");
  const out = memory.data(4);
  err = path_open(3, 0, changetype<usize>(path), path.byteLength, 0, 2, 2, 0, out);
  opened = load<u32>(out);
}

export function main(): i32 {
  outputString("init opened fd " + opened.toString() + " errno " + err.toString());
  return 0;
}
