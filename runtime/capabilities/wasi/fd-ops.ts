/**
 * Worker thread. The `fd_*` imports on files and directories (stdio's are in ../wasi.ts):
 * each checks the descriptor's rights first (ENOTCAPABLE), and acts on its host descriptor.
 */
import { fdatasyncSync, fstatSync, fsyncSync, ftruncateSync, lstatSync, readdirSync, readSync, writeSync } from 'node:fs';
import { guestBytes, guestWritable, type GuestContext } from '../context.js';
import { E, errnoOf, FDFLAGS, FILETYPE, R } from './abi.js';
import { closeEntry, dirHost, type FdEntry, type FdTable } from './fd-table.js';
import { encoder, filetype, iovecs, u32, u64, writeFilestat } from './memory.js';
import { at } from './paths.js';
import { badFstflags, procPath, setTimes } from './times.js';

/** The entry for `fd` if it has `right`, else BADF or NOTCAPABLE. */
export function withRight(table: FdTable, fd: number, right: bigint): FdEntry | number {
  const entry = table.entries.get(fd);
  if (entry === undefined) return E.BADF;
  if ((entry.base & right) !== right) return E.NOTCAPABLE;
  return entry;
}

/** The host descriptor of a file or directory entry (opening a preopen on first use), or an errno. */
export function hostOf(table: FdTable, entry: FdEntry): number {
  if (entry.kind !== 'dir') return entry.host;
  try {
    const host = dirHost(table, entry);
    if (host === 'call') return -E.MFILE;
    if (host === 'process') return -E.NFILE;
    return host as number;
  } catch (err) {
    return -errnoOf(err);
  }
}

export function fileRead(
  ctx: GuestContext,
  entry: FdEntry,
  iovs: number,
  count: number,
  at: bigint | undefined,
  what: string,
): number | [number] {
  // The offset is a u64 the guest passes as an i64: one past 2^63 is no file position, and Node
  // would take -1 for "the current position".
  if (at !== undefined && at < 0n) return [E.INVAL];
  let position = at !== undefined ? Number(at) : entry.position;
  let total = 0;
  try {
    for (const [ptr, len] of iovecs(ctx, iovs, count, what)) {
      const n = readSync(entry.host, guestWritable(ctx, ptr, len, what), 0, len, position);
      position += n;
      total += n;
      if (n < len) break;
    }
  } catch (err) {
    return [errnoOf(err)];
  }
  if (at === undefined) entry.position = position;
  return total;
}

export function fileWrite(
  ctx: GuestContext,
  entry: FdEntry,
  iovs: number,
  count: number,
  at: bigint | undefined,
  what: string,
): number | [number] {
  if (at !== undefined && at < 0n) return [E.INVAL];
  const parts = iovecs(ctx, iovs, count, what).map(([ptr, len]) => guestBytes(ctx, ptr, len, what));
  let total = 0;
  try {
    let position = at !== undefined ? Number(at) : (entry.flags & FDFLAGS.APPEND) !== 0 ? fstatSync(entry.host).size : entry.position;
    for (const bytes of parts) {
      const n = writeSync(entry.host, bytes, 0, bytes.byteLength, position);
      position += n;
      total += n;
    }
    if (at === undefined) entry.position = position;
    // O_SYNC/O_DSYNC semantics for a descriptor opened or set with those flags.
    if ((entry.flags & FDFLAGS.SYNC) !== 0) fsyncSync(entry.host);
    else if ((entry.flags & (FDFLAGS.DSYNC | FDFLAGS.RSYNC)) !== 0) fdatasyncSync(entry.host);
  } catch (err) {
    return [errnoOf(err)];
  }
  return total;
}

export function fdSeek(ctx: GuestContext, table: FdTable, fd: number, offset: bigint, whence: number, out: number): number {
  const entry = table.entries.get(fd);
  if (entry === undefined) return E.BADF;
  if (entry.kind === 'stdin' || entry.kind === 'stdout' || entry.kind === 'stderr') return E.SPIPE;
  const right = whence === 1 && offset === 0n ? R.FD_TELL | R.FD_SEEK : R.FD_SEEK;
  if ((entry.base & right) === 0n) return E.NOTCAPABLE;
  if (entry.kind === 'dir') return E.ISDIR;
  let base: number;
  if (whence === 0) base = 0;
  else if (whence === 1) base = entry.position;
  else if (whence === 2) base = fstatSync(entry.host).size;
  else return E.INVAL;
  const next = base + Number(offset);
  if (next < 0) return E.INVAL;
  entry.position = next;
  u64(ctx, out, BigInt(next), 'fd_seek');
  return E.SUCCESS;
}

export function fdFdstatGet(ctx: GuestContext, table: FdTable, fd: number, out: number): number {
  const entry = table.entries.get(fd);
  if (entry === undefined) return E.BADF;
  const bytes = guestWritable(ctx, out, 24, 'fd_fdstat_get');
  const dv = new DataView(bytes.buffer, bytes.byteOffset, 24);
  bytes.fill(0);
  dv.setUint8(0, entry.kind === 'dir' ? FILETYPE.DIRECTORY : entry.kind === 'file' ? FILETYPE.REGULAR_FILE : FILETYPE.CHARACTER_DEVICE);
  dv.setUint16(2, entry.flags, true);
  dv.setBigUint64(8, entry.base, true);
  dv.setBigUint64(16, entry.inheriting, true);
  return E.SUCCESS;
}

export function fdFdstatSetFlags(table: FdTable, fd: number, flags: number): number {
  const entry = withRight(table, fd, R.FD_FDSTAT_SET_FLAGS);
  if (typeof entry === 'number') return entry;
  if ((flags & ~(FDFLAGS.APPEND | FDFLAGS.NONBLOCK | FDFLAGS.DSYNC | FDFLAGS.RSYNC | FDFLAGS.SYNC)) !== 0) return E.INVAL;
  // APPEND and the sync flags act in fileWrite; NONBLOCK changes nothing (files never block).
  entry.flags = flags;
  table.changed = true;
  return E.SUCCESS;
}

export function fdFdstatSetRights(table: FdTable, fd: number, base: bigint, inheriting: bigint): number {
  const entry = table.entries.get(fd);
  if (entry === undefined) return E.BADF;
  if ((base & ~entry.base) !== 0n || (inheriting & ~entry.inheriting) !== 0n) return E.NOTCAPABLE;
  entry.base = base;
  entry.inheriting = inheriting;
  table.changed = true;
  return E.SUCCESS;
}

export function fdFilestatGet(ctx: GuestContext, table: FdTable, fd: number, out: number): number {
  const entry = table.entries.get(fd);
  if (entry === undefined) return E.BADF;
  if (entry.kind !== 'file' && entry.kind !== 'dir') {
    writeFilestat(ctx, out, undefined, 'fd_filestat_get');
    return E.SUCCESS;
  }
  if ((entry.base & R.FD_FILESTAT_GET) === 0n) return E.NOTCAPABLE;
  const host = hostOf(table, entry);
  if (host < 0) return -host;
  try {
    writeFilestat(ctx, out, fstatSync(host, { bigint: true }), 'fd_filestat_get');
  } catch (err) {
    return errnoOf(err);
  }
  return E.SUCCESS;
}

export function fdFilestatSetSize(table: FdTable, fd: number, size: bigint): number {
  const entry = withRight(table, fd, R.FD_FILESTAT_SET_SIZE);
  if (typeof entry === 'number') return entry;
  if (entry.kind !== 'file') return E.BADF;
  if (size < 0n || size > BigInt(Number.MAX_SAFE_INTEGER)) return E.FBIG;
  try {
    ftruncateSync(entry.host, Number(size));
  } catch (err) {
    return errnoOf(err);
  }
  return E.SUCCESS;
}

export function fdFilestatSetTimes(table: FdTable, fd: number, atim: bigint, mtim: bigint, flags: number): number {
  const entry = withRight(table, fd, R.FD_FILESTAT_SET_TIMES);
  if (typeof entry === 'number') return entry;
  const bad = badFstflags(flags);
  if (bad !== undefined) return bad;
  if (entry.kind !== 'file' && entry.kind !== 'dir') return E.BADF;
  if (!entry.grant!.writable) return E.ROFS;
  const host = hostOf(table, entry);
  if (host < 0) return -host;
  return setTimes(procPath(host), false, atim, mtim, flags);
}

export function fdSync(table: FdTable, fd: number, right: bigint): number {
  const entry = withRight(table, fd, right);
  if (typeof entry === 'number') return entry;
  if (entry.kind !== 'file' && entry.kind !== 'dir') return E.SUCCESS;
  const host = hostOf(table, entry);
  if (host < 0) return -host;
  try {
    if (right === R.FD_DATASYNC) fdatasyncSync(host);
    else fsyncSync(host);
  } catch (err) {
    return errnoOf(err);
  }
  return E.SUCCESS;
}

export function fdClose(table: FdTable, fd: number): number {
  const entry = table.entries.get(fd);
  if (entry === undefined) return E.BADF;
  closeEntry(table, entry);
  table.entries.delete(fd);
  table.changed = true;
  return E.SUCCESS;
}

export function fdRenumber(table: FdTable, from: number, to: number): number {
  const entry = table.entries.get(from);
  const target = table.entries.get(to);
  if (entry === undefined || target === undefined) return E.BADF;
  if (from === to) return E.SUCCESS;
  closeEntry(table, target);
  table.entries.set(to, entry);
  table.entries.delete(from);
  table.changed = true;
  return E.SUCCESS;
}

export function fdPrestatGet(ctx: GuestContext, table: FdTable, fd: number, out: number): number {
  const entry = table.entries.get(fd);
  if (entry?.preopen === undefined) return E.BADF;
  const bytes = guestWritable(ctx, out, 8, 'fd_prestat_get');
  const dv = new DataView(bytes.buffer, bytes.byteOffset, 8);
  dv.setUint32(0, 0, true);
  dv.setUint32(4, encoder.encode(entry.preopen).byteLength, true);
  return E.SUCCESS;
}

export function fdPrestatDirName(ctx: GuestContext, table: FdTable, fd: number, ptr: number, len: number): number {
  const entry = table.entries.get(fd);
  if (entry?.preopen === undefined) return E.BADF;
  const name = encoder.encode(entry.preopen);
  if (len >>> 0 < name.byteLength) return E.NAMETOOLONG;
  guestWritable(ctx, ptr, name.byteLength, 'fd_prestat_dir_name').set(name);
  return E.SUCCESS;
}

export function fdReaddir(ctx: GuestContext, table: FdTable, fd: number, buf: number, len: number, cookie: bigint, used: number): number {
  const entry = withRight(table, fd, R.FD_READDIR);
  if (typeof entry === 'number') return entry;
  if (entry.kind !== 'dir') return E.NOTDIR;
  const host = hostOf(table, entry);
  if (host < 0) return -host;
  let names: { name: string; type: number; ino: bigint }[];
  try {
    // Listed through the descriptor, not a path: the directory it was opened as, wherever it is now.
    names = readdirSync(at(host, '')).flatMap((name) => {
      // lstat, not the dirent: it gives the inode (d_ino) and never follows a link.
      const stats = lstatSync(at(host, name), { bigint: true, throwIfNoEntry: false });
      if (stats === undefined) return []; // removed since readdir
      return [{ name, type: filetype(stats), ino: stats.ino }];
    });
    const here = fstatSync(host, { bigint: true }).ino;
    const up = entry.preopen !== undefined ? here : (lstatSync(at(host, '..'), { bigint: true, throwIfNoEntry: false })?.ino ?? here);
    names.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    names.unshift({ name: '.', type: FILETYPE.DIRECTORY, ino: here }, { name: '..', type: FILETYPE.DIRECTORY, ino: up });
  } catch (err) {
    return errnoOf(err);
  }
  const target = guestWritable(ctx, buf, len, 'fd_readdir');
  let pos = 0;
  // The cookie is a u64 (an i64 at the boundary: a negative one is past 2^63, past the end).
  const start = BigInt.asUintN(64, cookie);
  const from = start < BigInt(names.length) ? Number(start) : names.length;
  for (let i = from; i < names.length && pos < target.byteLength; i++) {
    const name = encoder.encode(names[i]!.name);
    const record = new Uint8Array(24 + name.byteLength);
    const hv = new DataView(record.buffer);
    hv.setBigUint64(0, BigInt(i + 1), true);
    hv.setBigUint64(8, names[i]!.ino, true);
    hv.setUint32(16, name.byteLength, true);
    hv.setUint8(20, names[i]!.type);
    record.set(name, 24);
    // A record that does not fit is cut; the guest sees the buffer full and asks again.
    const n = Math.min(record.byteLength, target.byteLength - pos);
    target.set(record.subarray(0, n), pos);
    pos += n;
  }
  u32(ctx, used, 'fd_readdir', pos);
  return E.SUCCESS;
}
