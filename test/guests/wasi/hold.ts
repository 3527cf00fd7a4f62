// Holds descriptors across a suspension: opens data.txt (fd 3) up to 300 times, until an open
// fails; creates the directory ready-<stdin>; sleeps (suspending, so that the worker runs other
// calls) until a file named "release" exists; then prints "<files opened> <errno of the failed
// open, 0 if none>".
import { sleep } from "nuvola";

// @ts-ignore: decorator
@external("wasi_snapshot_preview1", "path_open")
declare function path_open(fd: u32, dirflags: u32, path: usize, pathLen: usize, oflags: u32, rights: u64, inheriting: u64, fdflags: u32, opened: usize): u16;
// @ts-ignore: decorator
@external("wasi_snapshot_preview1", "path_create_directory")
declare function path_create_directory(fd: u32, path: usize, len: usize): u16;
// @ts-ignore: decorator
@external("wasi_snapshot_preview1", "path_filestat_get")
declare function path_filestat_get(fd: u32, flags: u32, path: usize, len: usize, out: usize): u16;

const chunk = new ArrayBuffer(64);
const n = process.stdin.read(chunk);
const id = String.UTF8.decode(chunk.slice(0, max(n, 0)));

const data = String.UTF8.encode("data.txt");
const fdOut = memory.data(8);
let opened = 0;
let errno: u16 = 0;
for (let i = 0; i < 300; i++) {
  const err = path_open(3, 0, changetype<usize>(data), data.byteLength, 0, 1 << 1, 0, 0, fdOut);
  if (err != 0) {
    errno = err;
    break;
  }
  opened++;
}
const ready = String.UTF8.encode("ready-" + id);
path_create_directory(3, changetype<usize>(ready), ready.byteLength);
const release = String.UTF8.encode("release");
const stat = memory.data(64);
while (path_filestat_get(3, 0, changetype<usize>(release), release.byteLength, stat) != 0) sleep(5);
process.stdout.write(opened.toString() + " " + errno.toString() + "\n");
