/**
 * Worker thread. The `path_*` imports: each walks its path from a directory descriptor
 * (paths.ts) and acts on what is left — one directory descriptor and one name — through
 * `/proc/self/fd/<dir>/<name>`, so a rename racing the call cannot point it elsewhere.
 * `path_open` opens with O_NOFOLLOW|O_NONBLOCK, accepts only regular files and directories
 * (checked with fstat on what it opened: a FIFO never blocks the worker), and truncates only
 * then.
 */
import {
  fstatSync,
  ftruncateSync,
  linkSync,
  lstatSync,
  mkdirSync,
  openSync,
  readlinkSync,
  renameSync,
  rmdirSync,
  symlinkSync,
  unlinkSync,
  constants as fsc,
} from 'node:fs';
import { guestWritable, type GuestContext } from '../context.js';
import { DIR_RIGHTS, E, errnoOf, FDFLAGS, FILE_RIGHTS, LOOKUP_SYMLINK_FOLLOW, OFLAGS, R, WRITE_RIGHTS } from './abi.js';
import { release, take, untake, type FdTable, type WasiDir } from './fd-table.js';
import { hostOf, withRight } from './fd-ops.js';
import { guestString, u32, writeFilestat } from './memory.js';
import { resolve, type LeafMode, type Walk } from './paths.js';
import { logLine } from '../context.js';
import { badFstflags, procPath, setTimes } from './times.js';

/**
 * The longest path a guest may pass, in bytes (Linux's PATH_MAX): checked before the path is
 * decoded, so that a guest handing its whole memory as a path costs the worker nothing.
 */
export const MAX_PATH_BYTES = 4096;

interface Walked {
  walk: Walk;
  /** Whether the grant may be written. */
  writable: boolean;
}

/**
 * Walks the guest path at `path`/`len` from directory `fd`, which must hold `right`. With
 * `write`, a read-only grant answers EROFS.
 */
function walkFrom(
  ctx: GuestContext,
  table: FdTable,
  fd: number,
  path: number,
  len: number,
  right: bigint,
  mode: LeafMode,
  what: string,
  write: boolean,
): Walked | number {
  const entry = withRight(table, fd, 0n);
  if (typeof entry === 'number') return entry;
  if (entry.kind !== 'dir') return E.NOTDIR;
  if ((entry.base & right) !== right) return E.NOTCAPABLE;
  if (len >>> 0 > MAX_PATH_BYTES) return E.NAMETOOLONG;
  const guestPath = guestString(ctx, path, len, what);
  if (write && !entry.grant!.writable) {
    logLine(
      ctx,
      `nuvola: refused to change '${guestPath}': the directory granted as '${entry.grant!.guest}' is read-only; grant it with writable: true`,
    );
    return E.ROFS;
  }
  const host = hostOf(table, entry);
  if ((host === -E.LOOP || host === -E.NOTDIR) && entry.preopen !== undefined) {
    logLine(
      ctx,
      `nuvola: the directory granted as '${entry.grant!.guest}' cannot be opened: its host path holds a symbolic link or a file now ` +
        '(grants are opened without following links put on their path after registration)',
    );
  }
  if (host < 0) return -host;
  const walk = resolve(host, guestPath, mode);
  if (walk === E.NOTCAPABLE) refused(ctx, guestPath, entry.grant!);
  if (typeof walk === 'number') return walk;
  return { walk, writable: entry.grant!.writable };
}

/** Says in the log why a path was refused (ENOTCAPABLE). */
function refused(ctx: GuestContext, guestPath: string, grant: WasiDir): void {
  logLine(
    ctx,
    `nuvola: refused access to '${guestPath}': it lies outside the directory granted as '${grant.guest}' ` +
      '(absolute paths, .. above the descriptor and absolute symbolic links are refused); ' +
      'grant directories with register(name, wasm, { wasi: { dirs: [...] } })',
  );
}

/** Runs `op` on a walked path's leaf, closing the walk after. */
function onLeaf(walked: Walked | number, op: (path: string, walk: Walk) => number | void): number {
  if (typeof walked === 'number') return walked;
  try {
    return op(walked.walk.path, walked.walk) ?? E.SUCCESS;
  } catch (err) {
    // A system call's failure is the guest's errno; anything else (a bad guest pointer) traps.
    if (typeof (err as NodeJS.ErrnoException).syscall !== 'string') throw err;
    return errnoOf(err);
  } finally {
    walked.walk.done();
  }
}

/**
 * Runs `op` on the leaves of two walks (link and rename): the second walks only when the first
 * did, and each walk is done whatever happens.
 */
function onLeaves(from: Walked | number, walkTo: () => Walked | number, op: (source: string, target: string) => void): number {
  if (typeof from === 'number') return from;
  const to = walkTo();
  if (typeof to === 'number') {
    from.walk.done();
    return to;
  }
  return onLeaf(from, (source) => onLeaf(to, (target) => op(source, target)));
}

export function pathCreateDirectory(ctx: GuestContext, table: FdTable, fd: number, path: number, len: number): number {
  const walked = walkFrom(ctx, table, fd, path, len, R.PATH_CREATE_DIRECTORY, 'entry', 'path_create_directory', true);
  return onLeaf(walked, (p) => mkdirSync(p, 0o755));
}

export function pathFilestatGet(
  ctx: GuestContext,
  table: FdTable,
  fd: number,
  flags: number,
  path: number,
  len: number,
  out: number,
): number {
  const mode = (flags & LOOKUP_SYMLINK_FOLLOW) !== 0 ? 'follow' : 'nofollow';
  const walked = walkFrom(ctx, table, fd, path, len, R.PATH_FILESTAT_GET, mode, 'path_filestat_get', false);
  return onLeaf(walked, (p) => writeFilestat(ctx, out, lstatSync(p, { bigint: true }), 'path_filestat_get'));
}

export function pathFilestatSetTimes(
  ctx: GuestContext,
  table: FdTable,
  fd: number,
  flags: number,
  path: number,
  len: number,
  atim: bigint,
  mtim: bigint,
  fst: number,
): number {
  const bad = badFstflags(fst);
  if (bad !== undefined) return bad;
  const mode = (flags & LOOKUP_SYMLINK_FOLLOW) !== 0 ? 'follow' : 'nofollow';
  const walked = walkFrom(ctx, table, fd, path, len, R.PATH_FILESTAT_SET_TIMES, mode, 'path_filestat_set_times', true);
  return onLeaf(walked, (p, walk) => {
    lstatSync(p);
    return setTimes(procPath(walk.dir, walk.leaf), true, atim, mtim, fst);
  });
}

export function pathLink(
  ctx: GuestContext,
  table: FdTable,
  oldFd: number,
  oldFlags: number,
  oldPath: number,
  oldLen: number,
  newFd: number,
  newPath: number,
  newLen: number,
): number {
  const mode = (oldFlags & LOOKUP_SYMLINK_FOLLOW) !== 0 ? 'follow' : 'nofollow';
  const from = walkFrom(ctx, table, oldFd, oldPath, oldLen, R.PATH_LINK_SOURCE, mode, 'path_link', true);
  const to = (): Walked | number => walkFrom(ctx, table, newFd, newPath, newLen, R.PATH_LINK_TARGET, 'entry', 'path_link', true);
  // link(2) never follows the source's last component on Linux.
  return onLeaves(from, to, (source, target) => linkSync(source, target));
}

export function pathReadlink(
  ctx: GuestContext,
  table: FdTable,
  fd: number,
  path: number,
  len: number,
  buf: number,
  bufLen: number,
  used: number,
): number {
  const walked = walkFrom(ctx, table, fd, path, len, R.PATH_READLINK, 'nofollow', 'path_readlink', false);
  return onLeaf(walked, (p) => {
    const target = readlinkSync(p, { encoding: 'buffer' });
    const n = Math.min(target.byteLength, bufLen >>> 0);
    guestWritable(ctx, buf, n, 'path_readlink').set(target.subarray(0, n));
    u32(ctx, used, 'path_readlink', n);
  });
}

export function pathRemoveDirectory(ctx: GuestContext, table: FdTable, fd: number, path: number, len: number): number {
  const walked = walkFrom(ctx, table, fd, path, len, R.PATH_REMOVE_DIRECTORY, 'entry', 'path_remove_directory', true);
  return onLeaf(walked, (p) => rmdirSync(p));
}

export function pathUnlinkFile(ctx: GuestContext, table: FdTable, fd: number, path: number, len: number): number {
  const walked = walkFrom(ctx, table, fd, path, len, R.PATH_UNLINK_FILE, 'entry', 'path_unlink_file', true);
  return onLeaf(walked, (p) => unlinkSync(p));
}

export function pathRename(
  ctx: GuestContext,
  table: FdTable,
  fd: number,
  oldPath: number,
  oldLen: number,
  newFd: number,
  newPath: number,
  newLen: number,
): number {
  const from = walkFrom(ctx, table, fd, oldPath, oldLen, R.PATH_RENAME_SOURCE, 'entry', 'path_rename', true);
  const to = (): Walked | number => walkFrom(ctx, table, newFd, newPath, newLen, R.PATH_RENAME_TARGET, 'entry', 'path_rename', true);
  return onLeaves(from, to, (source, target) => renameSync(source, target));
}

export function pathSymlink(
  ctx: GuestContext,
  table: FdTable,
  oldPath: number,
  oldLen: number,
  fd: number,
  newPath: number,
  newLen: number,
): number {
  if (oldLen >>> 0 > MAX_PATH_BYTES) return E.NAMETOOLONG;
  const target = guestString(ctx, oldPath, oldLen, 'path_symlink');
  if (target.includes('\0')) return E.INVAL;
  // An absolute target could never be followed inside the grant; refused as cap-std does.
  if (target.startsWith('/')) return E.NOTCAPABLE;
  const walked = walkFrom(ctx, table, fd, newPath, newLen, R.PATH_SYMLINK, 'entry', 'path_symlink', true);
  return onLeaf(walked, (p) => symlinkSync(target, p));
}

/** Whether an errno says the leaf is a symbolic link that O_NOFOLLOW stopped at. */
function stoppedAtLink(err: unknown, walk: Walk): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  if (code !== 'ELOOP' && code !== 'ENOTDIR' && code !== 'EMLINK') return false;
  return lstatSync(walk.path, { throwIfNoEntry: false })?.isSymbolicLink() === true;
}

export function pathOpen(
  ctx: GuestContext,
  table: FdTable,
  fd: number,
  dirflags: number,
  path: number,
  len: number,
  oflags: number,
  rightsBase: bigint,
  rightsInheriting: bigint,
  fdflags: number,
  out: number,
): number {
  const parent = table.entries.get(fd);
  if (parent === undefined) return E.BADF;
  let needed = R.PATH_OPEN;
  if ((oflags & OFLAGS.CREAT) !== 0) needed |= R.PATH_CREATE_FILE;
  if ((oflags & OFLAGS.TRUNC) !== 0) needed |= R.PATH_FILESTAT_SET_SIZE;
  const changes = (oflags & (OFLAGS.CREAT | OFLAGS.TRUNC)) !== 0 || (rightsBase & R.FD_WRITE) !== 0n || (fdflags & FDFLAGS.APPEND) !== 0;
  const follow = (dirflags & LOOKUP_SYMLINK_FOLLOW) !== 0;
  const walked = walkFrom(ctx, table, fd, path, len, needed, 'nofollow', 'path_open', changes);
  if (typeof walked === 'number') return walked;
  const { walk, writable } = walked;
  const left = take(table);
  if (left !== 'ok') {
    walk.done();
    return left === 'call' ? E.MFILE : E.NFILE;
  }
  const write = writable && ((rightsBase & WRITE_RIGHTS) !== 0n || changes);
  const read = (rightsBase & (R.FD_READ | R.FD_READDIR)) !== 0n || !write;
  let flags = fsc.O_NOFOLLOW | fsc.O_NONBLOCK | (read && write ? fsc.O_RDWR : write ? fsc.O_WRONLY : fsc.O_RDONLY);
  if ((oflags & OFLAGS.DIRECTORY) !== 0) flags |= fsc.O_DIRECTORY;
  if ((oflags & OFLAGS.CREAT) !== 0) flags |= fsc.O_CREAT;
  if ((oflags & OFLAGS.EXCL) !== 0) flags |= fsc.O_EXCL;
  let host = -1;
  let newFd = 3;
  try {
    for (;;) {
      try {
        host = openSync(walk.path, flags, 0o644);
        break;
      } catch (err) {
        if (!follow || !stoppedAtLink(err, walk)) throw err;
        const failed = walk.expand();
        if (failed === E.NOTCAPABLE) refused(ctx, guestString(ctx, path, len, 'path_open'), parent.grant!);
        if (failed !== undefined) {
          untake(table);
          return failed;
        }
      }
    }
    const stats = fstatSync(host);
    const dir = stats.isDirectory();
    if (!dir && !stats.isFile()) {
      logLine(
        ctx,
        `nuvola: refused to open '${guestString(ctx, path, len, 'path_open')}': only regular files and directories can be opened`,
      );
      release(table, host);
      return E.ACCES;
    }
    if (dir && (oflags & OFLAGS.TRUNC) !== 0) {
      release(table, host);
      return E.ISDIR;
    }
    if ((oflags & OFLAGS.TRUNC) !== 0) ftruncateSync(host, 0);
    let base = rightsBase & parent.inheriting & (dir ? DIR_RIGHTS : FILE_RIGHTS);
    if (!writable) base &= ~WRITE_RIGHTS;
    while (table.entries.has(newFd)) newFd++;
    table.entries.set(newFd, {
      kind: dir ? 'dir' : 'file',
      host,
      grant: parent.grant,
      preopen: undefined,
      base,
      inheriting: rightsInheriting & parent.inheriting,
      flags: fdflags & (FDFLAGS.APPEND | FDFLAGS.DSYNC | FDFLAGS.NONBLOCK | FDFLAGS.RSYNC | FDFLAGS.SYNC),
      position: 0,
    });
    table.changed = true;
    host = -1;
  } catch (err) {
    if (host >= 0) release(table, host);
    else untake(table);
    return errnoOf(err);
  } finally {
    walk.done();
  }
  u32(ctx, out, 'path_open', newFd);
  return E.SUCCESS;
}
