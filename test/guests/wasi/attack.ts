// A hostile WASI guest for test/wasi-attack.test.ts: raw WASI calls with the descriptor
// numbers and flags a test chooses (no libc to normalise anything). Each line of stdin is a
// command, words separated by single spaces; each answers one line on stdout, "<cmd> errno N…":
//   open FD PATH            path_open(FD, follow, PATH) for reading → "open errno N fd M"
//   write FD PATH           path_open(FD, follow, PATH) with FD_WRITE, no flags → "write errno N fd M"
//   create FD PATH          path_open(FD, follow, PATH, O_CREAT|O_EXCL) with FD_WRITE
//   creat FD PATH           the same with O_CREAT alone
//   trunc FD PATH           path_open(FD, follow, PATH, O_TRUNC) with FD_WRITE
//   many FD PATH N          opens PATH N times for reading, keeping them → "many K errno N" (K opened)
//   trap                    traps (unreachable), leaving what it opened
//   spin                    loops until the call's timeout terminates its worker
//   opendir FD PATH         path_open(FD, follow, PATH, O_DIRECTORY), all rights but the write ones (EISDIR), all inherited
//   narrow FD PATH          opendir, but only FD_READ inherited
//   stat FD PATH            path_filestat_get(FD, follow, PATH) → "stat errno N type T"
//   lstat FD PATH           path_filestat_get(FD, no follow, PATH)
//   rename FD A FD2 B       path_rename
//   link FD A FD2 B         path_link (no follow)
//   symlink TARGET FD PATH  path_symlink
//   mkdir FD PATH           path_create_directory
//   unlink FD PATH          path_unlink_file
//   rmdir FD PATH           path_remove_directory
//   size FD                 fd_filestat_set_size(FD, 0) → "size errno N"
//   fdtimes FD              fd_filestat_set_times(FD, mtim = 1 s) → "fdtimes errno N"
//   times FD PATH           path_filestat_set_times(FD, no follow, PATH, mtim = 1 s)
//   timesf FD PATH          the same, following links
//   linkf FD A FD2 B        path_link following a link at A
//   readlink FD PATH        path_readlink → "readlink errno N TARGET"
//   cookie FD C             fd_readdir(FD, cookie C as i64) → "cookie errno N used M"
//   fdwrite FD              fd_write(FD, "x") → "fdwrite errno N"
//   pwrite FD               fd_pwrite(FD, "x", 0) → "pwrite errno N"
//   read FD                 fd_pread(FD, 64 bytes, 0) → "read errno N TEXT"
//   renumber A B            fd_renumber → "renumber errno N"
//   rights FD               fd_fdstat_set_rights(FD, all, all) → "rights errno N"
//   drop FD                 fd_fdstat_set_rights(FD, 0, 0) → "drop errno N"
//   close FD                fd_close → "close errno N"
//   poll N                  poll_oneoff with N clock subscriptions already due → "poll errno E events K"
//   iovs N                  fd_write(2, N empty iovecs) (memory grown to hold them) → "iovs errno N"
// @ts-ignore: decorator
@external("wasi_snapshot_preview1", "path_open")
declare function path_open(fd: u32, dirflags: u32, path: usize, pathLen: usize, oflags: u32, rights: u64, inheriting: u64, fdflags: u32, opened: usize): u16;
// @ts-ignore: decorator
@external("wasi_snapshot_preview1", "path_filestat_get")
declare function path_filestat_get(fd: u32, flags: u32, path: usize, len: usize, out: usize): u16;
// @ts-ignore: decorator
@external("wasi_snapshot_preview1", "path_rename")
declare function path_rename(fd: u32, from: usize, fromLen: usize, newFd: u32, to: usize, toLen: usize): u16;
// @ts-ignore: decorator
@external("wasi_snapshot_preview1", "path_link")
declare function path_link(fd: u32, flags: u32, from: usize, fromLen: usize, newFd: u32, to: usize, toLen: usize): u16;
// @ts-ignore: decorator
@external("wasi_snapshot_preview1", "path_symlink")
declare function path_symlink(target: usize, targetLen: usize, fd: u32, path: usize, len: usize): u16;
// @ts-ignore: decorator
@external("wasi_snapshot_preview1", "path_create_directory")
declare function path_create_directory(fd: u32, path: usize, len: usize): u16;
// @ts-ignore: decorator
@external("wasi_snapshot_preview1", "path_unlink_file")
declare function path_unlink_file(fd: u32, path: usize, len: usize): u16;
// @ts-ignore: decorator
@external("wasi_snapshot_preview1", "path_filestat_set_times")
declare function path_filestat_set_times(fd: u32, flags: u32, path: usize, len: usize, atim: u64, mtim: u64, fst: u32): u16;
// @ts-ignore: decorator
@external("wasi_snapshot_preview1", "path_readlink")
declare function path_readlink(fd: u32, path: usize, len: usize, buf: usize, bufLen: usize, used: usize): u16;
// @ts-ignore: decorator
@external("wasi_snapshot_preview1", "fd_readdir")
declare function fd_readdir(fd: u32, buf: usize, len: usize, cookie: u64, used: usize): u16;
// @ts-ignore: decorator
@external("wasi_snapshot_preview1", "fd_write")
declare function fd_write(fd: u32, iovs: usize, count: usize, written: usize): u16;
// @ts-ignore: decorator
@external("wasi_snapshot_preview1", "fd_pwrite")
declare function fd_pwrite(fd: u32, iovs: usize, count: usize, offset: u64, written: usize): u16;
// @ts-ignore: decorator
@external("wasi_snapshot_preview1", "fd_pread")
declare function fd_pread(fd: u32, iovs: usize, count: usize, offset: u64, read: usize): u16;
// @ts-ignore: decorator
@external("wasi_snapshot_preview1", "fd_renumber")
declare function fd_renumber(from: u32, to: u32): u16;
// @ts-ignore: decorator
@external("wasi_snapshot_preview1", "fd_fdstat_set_rights")
declare function fd_fdstat_set_rights(fd: u32, base: u64, inheriting: u64): u16;
// @ts-ignore: decorator
@external("wasi_snapshot_preview1", "path_remove_directory")
declare function path_remove_directory(fd: u32, path: usize, len: usize): u16;
// @ts-ignore: decorator
@external("wasi_snapshot_preview1", "fd_filestat_set_size")
declare function fd_filestat_set_size(fd: u32, size: u64): u16;
// @ts-ignore: decorator
@external("wasi_snapshot_preview1", "fd_filestat_set_times")
declare function fd_filestat_set_times(fd: u32, atim: u64, mtim: u64, fst: u32): u16;
// @ts-ignore: decorator
@external("wasi_snapshot_preview1", "poll_oneoff")
declare function poll_oneoff(subs: usize, events: usize, n: usize, nevents: usize): u16;
// @ts-ignore: decorator
@external("wasi_snapshot_preview1", "fd_close")
declare function fd_close(fd: u32): u16;

function say(line: string): void {
  process.stdout.write(line + "\n");
}

class Str {
  constructor(public ptr: usize, public len: usize) {}
}

function str(s: string): Str {
  const bytes = String.UTF8.encode(s);
  // Kept alive by the list below: the guest never collects during a command.
  keep.push(bytes);
  return new Str(changetype<usize>(bytes), bytes.byteLength);
}
const keep: ArrayBuffer[] = [];

const ALL: u64 = 0x1fffffff;
const FD_READ: u64 = 1 << 1;
const FD_WRITE: u64 = 1 << 6;
// FD_WRITE, FD_DATASYNC, FD_ALLOCATE, FD_FILESTAT_SET_SIZE: a directory asked with them is EISDIR.
const WRITE: u64 = FD_WRITE | (1 << 0) | (1 << 8) | (1 << 22);

function open(cmd: string, fd: u32, path: string, oflags: u32, rights: u64, inheriting: u64): void {
  const p = str(path);
  const out = memory.data(8);
  store<u32>(out, 0xffffffff);
  const err = path_open(fd, 1, p.ptr, p.len, oflags, rights, inheriting, 0, out);
  say(cmd + " errno " + err.toString() + (err == 0 ? " fd " + load<u32>(out).toString() : ""));
}

function iov(s: string): usize {
  const p = str(s);
  const v = memory.data(8);
  store<u32>(v, <u32>p.ptr);
  store<u32>(v, <u32>p.len, 4);
  return v;
}

function run(line: string): void {
  const w = line.split(" ");
  const cmd = w[0];
  const fd = w.length > 1 ? <u32>I32.parseInt(w[1]) : 0;
  if (cmd == "open") open(cmd, <u32>I32.parseInt(w[1]), w[2], 0, FD_READ, 0);
  else if (cmd == "write") open(cmd, <u32>I32.parseInt(w[1]), w[2], 0, FD_WRITE | FD_READ, 0);
  else if (cmd == "create") open(cmd, <u32>I32.parseInt(w[1]), w[2], 1 | 4, FD_WRITE | FD_READ, 0);
  else if (cmd == "creat") open(cmd, fd, w[2], 1, FD_WRITE | FD_READ, 0);
  else if (cmd == "trunc") open(cmd, fd, w[2], 8, FD_WRITE | FD_READ, 0);
  else if (cmd == "many") {
    const p = str(w[2]);
    const out = memory.data(8);
    const n = I32.parseInt(w[3]);
    let k = 0;
    let err: u16 = 0;
    while (k < n) {
      err = path_open(fd, 1, p.ptr, p.len, 0, FD_READ, 0, 0, out);
      if (err != 0) break;
      k++;
    }
    say(cmd + " " + k.toString() + " errno " + err.toString());
  } else if (cmd == "trap") unreachable();
  else if (cmd == "spin") {
    let n: u32 = 0;
    while (n != 0xffffffff) n = load<u32>(memory.data(4)) + (n & 1);
  }
  else if (cmd == "narrow") open(cmd, fd, w[2], 2, ALL & ~WRITE, FD_READ);
  else if (cmd == "opendir") open(cmd, <u32>I32.parseInt(w[1]), w[2], 2, ALL & ~WRITE, ALL);
  else if (cmd == "stat" || cmd == "lstat") {
    const p = str(w[2]);
    const st = memory.data(64);
    memory.fill(st, 0, 64);
    const err = path_filestat_get(fd, cmd == "stat" ? 1 : 0, p.ptr, p.len, st);
    say(cmd + " errno " + err.toString() + " type " + load<u8>(st, 16).toString());
  } else if (cmd == "rename" || cmd == "link" || cmd == "linkf") {
    const a = str(w[2]);
    const b = str(w[4]);
    const to = <u32>I32.parseInt(w[3]);
    const err = cmd == "rename" ? path_rename(fd, a.ptr, a.len, to, b.ptr, b.len) : path_link(fd, cmd == "linkf" ? 1 : 0, a.ptr, a.len, to, b.ptr, b.len);
    say(cmd + " errno " + err.toString());
  } else if (cmd == "symlink") {
    const t = str(w[1]);
    const p = str(w[3]);
    say(cmd + " errno " + path_symlink(t.ptr, t.len, <u32>I32.parseInt(w[2]), p.ptr, p.len).toString());
  } else if (cmd == "mkdir") {
    const p = str(w[2]);
    say(cmd + " errno " + path_create_directory(fd, p.ptr, p.len).toString());
  } else if (cmd == "rmdir") {
    const p = str(w[2]);
    say(cmd + " errno " + path_remove_directory(fd, p.ptr, p.len).toString());
  } else if (cmd == "size") {
    say(cmd + " errno " + fd_filestat_set_size(fd, 0).toString());
  } else if (cmd == "fdtimes") {
    say(cmd + " errno " + fd_filestat_set_times(fd, 0, 1000000000, 4).toString());
  } else if (cmd == "unlink") {
    const p = str(w[2]);
    say(cmd + " errno " + path_unlink_file(fd, p.ptr, p.len).toString());
  } else if (cmd == "times" || cmd == "timesf") {
    const p = str(w[2]);
    say(cmd + " errno " + path_filestat_set_times(fd, cmd == "timesf" ? 1 : 0, p.ptr, p.len, 0, 1000000000, 4).toString());
  } else if (cmd == "readlink") {
    const p = str(w[2]);
    const buf = memory.data(256);
    const used = memory.data(4);
    const err = path_readlink(fd, p.ptr, p.len, buf, 256, used);
    say(cmd + " errno " + err.toString() + (err == 0 ? " " + String.UTF8.decodeUnsafe(buf, load<u32>(used)) : ""));
  } else if (cmd == "cookie") {
    const buf = memory.data(4096);
    const used = memory.data(4);
    store<u32>(used, 0);
    const err = fd_readdir(fd, buf, 4096, <u64>I64.parseInt(w[2]), used);
    say(cmd + " errno " + err.toString() + " used " + load<u32>(used).toString());
  } else if (cmd == "fdwrite") {
    say(cmd + " errno " + fd_write(fd, iov("x"), 1, memory.data(4)).toString());
  } else if (cmd == "pwrite") {
    say(cmd + " errno " + fd_pwrite(fd, iov("x"), 1, 0, memory.data(4)).toString());
  } else if (cmd == "read") {
    const buf = memory.data(64);
    const v = memory.data(8);
    store<u32>(v, <u32>buf);
    store<u32>(v, 64, 4);
    const n = memory.data(4);
    const err = fd_pread(fd, v, 1, 0, n);
    say(cmd + " errno " + err.toString() + (err == 0 ? " " + String.UTF8.decodeUnsafe(buf, load<u32>(n)).trim() : ""));
  } else if (cmd == "renumber") {
    say(cmd + " errno " + fd_renumber(fd, <u32>I32.parseInt(w[2])).toString());
  } else if (cmd == "rights") {
    say(cmd + " errno " + fd_fdstat_set_rights(fd, ALL, ALL).toString());
  } else if (cmd == "drop") {
    say(cmd + " errno " + fd_fdstat_set_rights(fd, 0, 0).toString());
  } else if (cmd == "poll") {
    const n = <usize>I32.parseInt(w[1]);
    const subs = (<usize>memory.size() << 16);
    memory.grow(<i32>((n * 80 + 0xffff) >> 16) + 1);
    // Zeroed memory: each subscription is a clock (type 0), realtime, timeout 0, relative: due.
    const events = subs + n * 48;
    const nevents = memory.data(4);
    store<u32>(nevents, 0);
    const err = poll_oneoff(subs, events, n, nevents);
    say(cmd + " errno " + err.toString() + " events " + load<u32>(nevents).toString());
  } else if (cmd == "iovs") {
    const n = <usize>I32.parseInt(w[1]);
    const base = (<usize>memory.size() << 16);
    memory.grow(<i32>((n * 8 + 0xffff) >> 16) + 1);
    const written = memory.data(4);
    say(cmd + " errno " + fd_write(2, base, n, written).toString());
  } else if (cmd == "close") {
    say(cmd + " errno " + fd_close(fd).toString());
  } else if (cmd != "") {
    say("unknown " + cmd);
  }
}

const chunk = new ArrayBuffer(4096);
let text = "";
for (;;) {
  const n = process.stdin.read(chunk);
  if (n <= 0) break;
  text += String.UTF8.decode(chunk.slice(0, n));
}
const lines = text.split("\n");
for (let i = 0; i < lines.length; i++) run(lines[i]);
