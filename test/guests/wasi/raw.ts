// Built with the WASI shim, but calling WASI directly, the way a hostile guest would (no
// libc to normalise paths first). Each line of stdin is a command; each result is a line on
// stdout:
//   open PATH          path_open(fd 3, PATH) for reading → "open PATH errno N"
//   create PATH        path_open(fd 3, PATH, O_CREAT) for writing → "create PATH errno N"
//   badiov             fd_write with an iovec pointing past the end of memory (traps)
//   clock              "clock ok" when the monotonic clock moves forward
//   random             "random ok" when 32 random bytes are not all zero
//   prestat            the name of preopened fd 3, or "prestat errno N"
//   hold PATH          opens PATH and then loops forever (its worker is terminated at the timeout)
//   unlink PATH        path_unlink_file(fd 3, PATH) → "unlink PATH errno N"
//   rmdir PATH         path_remove_directory(fd 3, PATH) → "rmdir PATH errno N"
//   rename A B         path_rename(fd 3, A, fd 3, B) → "rename A B errno N"
//   lstat PATH         path_filestat_get(fd 3, no follow, PATH) → "lstat PATH errno N type T"
//   readdir            fd_readdir(fd 3) → "readdir N entries, M without an inode"
//   spew N             N bytes of "x" to stderr, no newline
//   opendir PATH       path_open(fd 3, PATH, O_DIRECTORY), kept for list/openat → "opendir PATH errno N"
//   list               fd_readdir of the directory opendir opened → "list NAME NAME…" (without . and ..)
//   openat PATH        path_open(that directory, PATH) for reading → "openat PATH errno N"
// @ts-ignore: decorator
@external("wasi_snapshot_preview1", "fd_write")
declare function fd_write(fd: u32, iovs: usize, count: usize, written: usize): u16;
// @ts-ignore: decorator
@external("wasi_snapshot_preview1", "path_open")
declare function path_open(fd: u32, dirflags: u32, path: usize, pathLen: usize, oflags: u32, rights: u64, inheriting: u64, fdflags: u32, opened: usize): u16;
// @ts-ignore: decorator
@external("wasi_snapshot_preview1", "fd_prestat_get")
declare function fd_prestat_get(fd: u32, out: usize): u16;
// @ts-ignore: decorator
@external("wasi_snapshot_preview1", "fd_prestat_dir_name")
declare function fd_prestat_dir_name(fd: u32, out: usize, len: usize): u16;
// @ts-ignore: decorator
@external("wasi_snapshot_preview1", "clock_time_get")
declare function clock_time_get(id: u32, precision: u64, out: usize): u16;
// @ts-ignore: decorator
@external("wasi_snapshot_preview1", "path_unlink_file")
declare function path_unlink_file(fd: u32, path: usize, len: usize): u16;
// @ts-ignore: decorator
@external("wasi_snapshot_preview1", "path_remove_directory")
declare function path_remove_directory(fd: u32, path: usize, len: usize): u16;
// @ts-ignore: decorator
@external("wasi_snapshot_preview1", "path_rename")
declare function path_rename(fd: u32, from: usize, fromLen: usize, newFd: u32, to: usize, toLen: usize): u16;
// @ts-ignore: decorator
@external("wasi_snapshot_preview1", "path_filestat_get")
declare function path_filestat_get(fd: u32, flags: u32, path: usize, len: usize, out: usize): u16;
// @ts-ignore: decorator
@external("wasi_snapshot_preview1", "fd_readdir")
declare function fd_readdir(fd: u32, buf: usize, len: usize, cookie: u64, used: usize): u16;
// @ts-ignore: decorator
@external("wasi_snapshot_preview1", "random_get")
declare function random_get(buf: usize, len: usize): u16;

function say(line: string): void {
  process.stdout.write(line + "\n");
}

function openPath(path: string, create: bool): void {
  const bytes = String.UTF8.encode(path);
  const fdOut = memory.data(8);
  const rights: u64 = create ? (1 << 6) | (1 << 1) : 1 << 1;
  const err = path_open(3, 1 /* follow links, as wasi-libc does */, changetype<usize>(bytes), bytes.byteLength, create ? 1 : 0, rights, rights, 0, fdOut);
  say((create ? "create " : "open ") + path + " errno " + err.toString());
}

function pathOp(op: string, path: string): void {
  const bytes = String.UTF8.encode(path);
  const ptr = changetype<usize>(bytes);
  const len = bytes.byteLength;
  let err: u16 = 0;
  let extra = "";
  if (op == "unlink") err = path_unlink_file(3, ptr, len);
  else if (op == "rmdir") err = path_remove_directory(3, ptr, len);
  else if (op == "lstat") {
    const stat = memory.data(64);
    err = path_filestat_get(3, 0, ptr, len, stat);
    extra = " type " + load<u8>(stat, 16).toString();
  }
  say(op + " " + path + " errno " + err.toString() + extra);
}

function rename(from: string, to: string): void {
  const a = String.UTF8.encode(from);
  const b = String.UTF8.encode(to);
  const err = path_rename(3, changetype<usize>(a), a.byteLength, 3, changetype<usize>(b), b.byteLength);
  say("rename " + from + " " + to + " errno " + err.toString());
}

let held: u32 = 0;

function openDir(path: string): void {
  const bytes = String.UTF8.encode(path);
  const fdOut = memory.data(8);
  const rights: u64 = (1 << 13) | (1 << 14);
  const err = path_open(3, 0, changetype<usize>(bytes), bytes.byteLength, 2, rights, 1 << 1, 0, fdOut);
  if (err == 0) held = load<u32>(fdOut);
  say("opendir " + path + " errno " + err.toString());
}

function openAt(path: string): void {
  const bytes = String.UTF8.encode(path);
  const fdOut = memory.data(8);
  const err = path_open(held, 1, changetype<usize>(bytes), bytes.byteLength, 0, 1 << 1, 0, 0, fdOut);
  say("openat " + path + " errno " + err.toString());
}

function list(): void {
  const buf = new ArrayBuffer(65536);
  const used = memory.data(4);
  const err = fd_readdir(held, changetype<usize>(buf), 65536, 0, used);
  if (err != 0) {
    say("list errno " + err.toString());
    return;
  }
  let at: u32 = 0;
  let names = "list";
  const end = load<u32>(used);
  while (at + 24 <= end) {
    const len = load<u32>(changetype<usize>(buf) + at, 16);
    const name = String.UTF8.decodeUnsafe(changetype<usize>(buf) + at + 24, len);
    if (name != "." && name != "..") names += " " + name;
    at += 24 + len;
  }
  say(names);
}

function readdir(): void {
  const buf = new ArrayBuffer(65536);
  const used = memory.data(4);
  const err = fd_readdir(3, changetype<usize>(buf), 65536, 0, used);
  if (err != 0) {
    say("readdir errno " + err.toString());
    return;
  }
  let at: u32 = 0;
  let entries = 0;
  let noInode = 0;
  const end = load<u32>(used);
  while (at + 24 <= end) {
    if (load<u64>(changetype<usize>(buf) + at, 8) == 0) noInode++;
    entries++;
    at += 24 + load<u32>(changetype<usize>(buf) + at, 16);
  }
  say("readdir " + entries.toString() + " entries, " + noInode.toString() + " without an inode");
}

const chunk = new ArrayBuffer(4096);
let text = "";
for (;;) {
  const n = process.stdin.read(chunk);
  if (n <= 0) break;
  text += String.UTF8.decode(chunk.slice(0, n));
}
const lines = text.split("\n");
for (let i = 0; i < lines.length; i++) {
  const line = lines[i];
  if (line.startsWith("open ")) openPath(line.substring(5), false);
  else if (line.startsWith("hold ")) {
    openPath(line.substring(5), false);
    let spin: u32 = 0;
    while (spin != 0xffffffff) spin = load<u32>(memory.data(4)) + (spin & 1);
  }
  else if (line.startsWith("create ")) openPath(line.substring(7), true);
  else if (line.startsWith("unlink ")) pathOp("unlink", line.substring(7));
  else if (line.startsWith("rmdir ")) pathOp("rmdir", line.substring(6));
  else if (line.startsWith("lstat ")) pathOp("lstat", line.substring(6));
  else if (line.startsWith("rename ")) {
    const parts = line.substring(7).split(" ");
    rename(parts[0], parts[1]);
  } else if (line == "readdir") readdir();
  else if (line.startsWith("opendir ")) openDir(line.substring(8));
  else if (line.startsWith("openat ")) openAt(line.substring(7));
  else if (line == "list") list();
  else if (line.startsWith("spew ")) {
    const n = I32.parseInt(line.substring(5));
    const buf = new ArrayBuffer(n);
    memory.fill(changetype<usize>(buf), 0x78, n);
    const iov = memory.data(8);
    store<u32>(iov, changetype<usize>(buf));
    store<u32>(iov, n, 4);
    fd_write(2, iov, 1, memory.data(4));
  }
  else if (line == "badiov") {
    const iov = memory.data(8);
    store<u32>(iov, 0xfffff000);
    store<u32>(iov, 4096, 4);
    fd_write(1, iov, 1, memory.data(4));
  } else if (line == "clock") {
    const a = memory.data(8);
    const b = memory.data(8);
    clock_time_get(1, 0, a);
    for (let j = 0; j < 100000; j++) store<u32>(b, j);
    clock_time_get(1, 0, b);
    say(load<u64>(b) > load<u64>(a) ? "clock ok" : "clock stuck");
  } else if (line == "random") {
    const buf = memory.data(32);
    random_get(buf, 32);
    let any = false;
    for (let j = 0; j < 32; j++) any = any || load<u8>(buf + j) != 0;
    say(any ? "random ok" : "random zero");
  } else if (line == "prestat") {
    const pre = memory.data(8);
    const err = fd_prestat_get(3, pre);
    if (err != 0) {
      say("prestat errno " + err.toString());
    } else {
      const len = load<u32>(pre, 4);
      const name = new ArrayBuffer(len);
      fd_prestat_dir_name(3, changetype<usize>(name), len);
      say("prestat " + String.UTF8.decode(name));
    }
  }
}
