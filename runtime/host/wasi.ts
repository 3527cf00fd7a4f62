/**
 * Worker thread. Host imports of module `wasi_snapshot_preview1`: WASI preview 1 for guests
 * built by other toolchains (C and Rust through wasi-libc, AssemblyScript through
 * `@assemblyscript/wasi-shim`), written for nuvola rather than borrowed from `node:wasi` or
 * `@wasmer/wasi` (guest/README.md has the measurements and the reasons).
 *
 * Per call: stdin reads the invocation's input; stdout is the output of a WASI command
 * (`abi: 'wasi'`) and goes to the log for SDK guests; stderr goes to the function's log, line
 * by line; `proc_exit(code)` ends the call with `code` as its return code. Arguments and the
 * environment are the registration's. There is no file system but the directories the
 * registration grants (read-only unless `writable`), no network, and no blocking sleep
 * (`poll_oneoff` answers ENOTSUP: a worker thread serves many guests).
 *
 * Every pointer goes through the bounds-checked views of context.ts: a guest passing a range
 * outside its memory traps with E_GUEST_POINTER.
 */
import {
  closeSync,
  fstatSync,
  ftruncateSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  readSync,
  readlinkSync,
  realpathSync,
  renameSync,
  rmdirSync,
  statSync,
  lstatSync,
  unlinkSync,
  writeSync,
  constants as fsc,
  type Stats,
} from 'node:fs';
import { basename, dirname, isAbsolute, resolve, sep } from 'node:path';
import { ErrorCode, LimitError } from '../errors.js';
import { guestBytes, guestWritable, logLine, type ContextRef, type GuestContext } from './context.js';
import type { Capability } from './imports.js';

export const WASI_MODULE = 'wasi_snapshot_preview1';
/** A WASI command's entry point. */
export const WASI_START = '_start';

/** A directory a registration grants: `host` (absolute, resolved) appears to the guest as `guest`. */
export interface WasiDir {
  host: string;
  guest: string;
  writable: boolean;
}

/** What a registration sets for its WASI guest (resolved and checked on the main thread). */
export interface WasiConfig {
  /** argv[1..]; argv[0] is the function's name. */
  args: string[];
  /** `NAME=value` pairs. */
  env: string[];
  dirs: WasiDir[];
}

export const NO_WASI: WasiConfig = { args: [], env: [], dirs: [] };

/** Files and directories one call may hold open at once (preopens included); one more gets EMFILE. */
const MAX_OPEN_FILES = 256;

/** Thrown by `proc_exit` through the guest's frames; the instance turns it into the return code. */
export class WasiExit {
  constructor(readonly code: number) {}
}

/** An open file or directory of the current call (fd 3 and up; preopened directories first). */
interface OpenEntry {
  /** Host path (absolute). */
  path: string;
  /** The granted directory it lies in. */
  dir: WasiDir;
  /** Host file descriptor of a regular file; undefined for a directory. */
  fd: number | undefined;
  position: number;
  append: boolean;
  writable: boolean;
  preopen: boolean;
}

/** Per-instance WASI state; `startCall` clears what a call leaves. */
export interface WasiState {
  config: WasiConfig;
  /** Whether stdout is the call's output (a WASI command) or log lines (an SDK guest). */
  stdoutIsOutput: boolean;
  stdinPos: number;
  stdout: Uint8Array[];
  stdoutBytes: number;
  /** Unterminated last line of stderr (and of stdout when it is logged), at most the log budget. */
  pending: [string, string];
  /** Streaming decoders, so a UTF-8 sequence split across writes decodes whole. */
  decoders: [TextDecoder, TextDecoder];
  files: Map<number, OpenEntry>;
  nextFd: number;
}

export function newWasiState(config: WasiConfig, stdoutIsOutput: boolean): WasiState {
  const state: WasiState = {
    config,
    stdoutIsOutput,
    stdinPos: 0,
    stdout: [],
    stdoutBytes: 0,
    pending: ['', ''],
    decoders: [new TextDecoder(), new TextDecoder()],
    files: new Map(),
    nextFd: 3,
  };
  openPreopens(state);
  return state;
}

function openPreopens(state: WasiState): void {
  state.config.dirs.forEach((dir, i) => {
    state.files.set(3 + i, { path: dir.host, dir, fd: undefined, position: 0, append: false, writable: dir.writable, preopen: true });
  });
  state.nextFd = 3 + state.config.dirs.length;
}

/** Ends a call: closes the files it opened, flushes partial log lines, and returns its stdout. */
export function endCall(ctx: GuestContext, wasi: WasiState): Uint8Array | undefined {
  for (const [fd, entry] of wasi.files) {
    if (entry.preopen) continue;
    if (entry.fd !== undefined) closeQuietly(entry.fd);
    wasi.files.delete(fd);
  }
  wasi.nextFd = 3 + wasi.config.dirs.length;
  for (const stream of [0, 1] as const) {
    const rest = wasi.pending[stream] + wasi.decoders[stream].decode();
    if (rest !== '') logLine(ctx, rest);
    wasi.pending[stream] = '';
  }
  wasi.stdinPos = 0;
  const chunks = wasi.stdout;
  const total = wasi.stdoutBytes;
  wasi.stdout = [];
  wasi.stdoutBytes = 0;
  if (!wasi.stdoutIsOutput) return undefined;
  if (chunks.length === 1) return chunks[0];
  const out = new Uint8Array(total);
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.byteLength;
  }
  return out;
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // Already closed: nothing to give back.
  }
}

// errno values of WASI preview 1 (alphabetical in the spec).
const E = {
  SUCCESS: 0,
  ACCES: 2,
  BADF: 8,
  BUSY: 10,
  EXIST: 20,
  FBIG: 22,
  INVAL: 28,
  IO: 29,
  ISDIR: 31,
  LOOP: 32,
  MFILE: 33,
  NAMETOOLONG: 37,
  NOENT: 44,
  NOSPC: 51,
  NOTDIR: 54,
  NOTEMPTY: 55,
  NOTSUP: 58,
  PERM: 63,
  ROFS: 69,
  SPIPE: 70,
  XDEV: 75,
  NOTCAPABLE: 76,
} as const;

const FILETYPE = { UNKNOWN: 0, CHARACTER_DEVICE: 2, DIRECTORY: 3, REGULAR_FILE: 4, SYMBOLIC_LINK: 7 } as const;
const OFLAGS = { CREAT: 1, DIRECTORY: 2, EXCL: 4, TRUNC: 8 } as const;
const FDFLAGS_APPEND = 1;
const LOOKUP_SYMLINK_FOLLOW = 1;
const RIGHT_FD_WRITE = 1n << 6n;
const ALL_RIGHTS = (1n << 30n) - 1n;

/** Node's error codes → WASI errno. */
function errnoOf(err: unknown): number {
  switch ((err as NodeJS.ErrnoException).code) {
    case 'ENOENT':
      return E.NOENT;
    case 'EEXIST':
      return E.EXIST;
    case 'ENOTDIR':
      return E.NOTDIR;
    case 'EISDIR':
      return E.ISDIR;
    case 'ENOTEMPTY':
      return E.NOTEMPTY;
    case 'EACCES':
      return E.ACCES;
    case 'EPERM':
      return E.PERM;
    case 'EROFS':
      return E.ROFS;
    case 'EINVAL':
      return E.INVAL;
    case 'EMFILE':
    case 'ENFILE':
      return E.MFILE;
    case 'ELOOP':
      return E.LOOP;
    case 'ENAMETOOLONG':
      return E.NAMETOOLONG;
    case 'ENOSPC':
    case 'EDQUOT':
      return E.NOSPC;
    case 'EBUSY':
      return E.BUSY;
    case 'EFBIG':
      return E.FBIG;
    case 'EXDEV':
      return E.XDEV;
    default:
      return E.IO;
  }
}

const decoder = new TextDecoder();
const encoder = new TextEncoder();

/**
 * Appends text written to a logged stream, emitting each complete line. Only the new bytes are
 * searched for newlines, and an unterminated line longer than the log budget left is emitted
 * (truncated) at once, so a guest writing without newlines costs neither memory nor time.
 */
function logText(ctx: GuestContext, wasi: WasiState, stream: 0 | 1, bytes: Uint8Array): void {
  if (ctx.logBudget <= 0) return;
  const text = wasi.decoders[stream].decode(bytes, { stream: true });
  let start = 0;
  for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n', start)) {
    logLine(ctx, wasi.pending[stream] + text.slice(start, nl));
    wasi.pending[stream] = '';
    start = nl + 1;
  }
  wasi.pending[stream] += text.slice(start);
  if (wasi.pending[stream].length > ctx.logBudget) {
    logLine(ctx, wasi.pending[stream]);
    wasi.pending[stream] = '';
  }
}

function u32(ctx: GuestContext, ptr: number, what: string, value: number): void {
  const bytes = guestWritable(ctx, ptr, 4, what);
  new DataView(bytes.buffer, bytes.byteOffset, 4).setUint32(0, value, true);
}

function u64(ctx: GuestContext, ptr: number, value: bigint, what: string): void {
  const bytes = guestWritable(ctx, ptr, 8, what);
  new DataView(bytes.buffer, bytes.byteOffset, 8).setBigUint64(0, BigInt.asUintN(64, value), true);
}

/** The (pointer, length) pairs of an iovec array, bounds-checked. */
function iovecs(ctx: GuestContext, iovs: number, count: number, what: string): [number, number][] {
  const table = guestBytes(ctx, iovs, (count >>> 0) * 8, what);
  const dv = new DataView(table.buffer, table.byteOffset, table.byteLength);
  const out: [number, number][] = [];
  for (let i = 0; i < count >>> 0; i++) out.push([dv.getUint32(i * 8, true), dv.getUint32(i * 8 + 4, true)]);
  return out;
}

function guestString(ctx: GuestContext, ptr: number, len: number, what: string): string {
  return decoder.decode(guestBytes(ctx, ptr, len, what));
}

/** Writes a NUL-terminated string list (argv, environ) the way args_get/environ_get lay it out. */
function writeStrings(ctx: GuestContext, list: string[], ptrs: number, buf: number, what: string): number {
  let at = buf >>> 0;
  list.forEach((item, i) => {
    const bytes = encoder.encode(`${item}\0`);
    guestWritable(ctx, at, bytes.byteLength, what).set(bytes);
    u32(ctx, (ptrs >>> 0) + i * 4, what, at);
    at += bytes.byteLength;
  });
  return E.SUCCESS;
}

function sizes(ctx: GuestContext, list: string[], countPtr: number, sizePtr: number, what: string): number {
  u32(ctx, countPtr, what, list.length);
  u32(
    ctx,
    sizePtr,
    what,
    list.reduce((n, s) => n + encoder.encode(s).byteLength + 1, 0),
  );
  return E.SUCCESS;
}

function argv(ctx: GuestContext, wasi: WasiState): string[] {
  return [ctx.fn, ...wasi.config.args];
}

function toNs(ms: number): bigint {
  return BigInt(Math.round(ms * 1e6));
}

/** Whether the host path `p` lies in the granted directory `root` (or is it). */
function within(root: string, p: string): boolean {
  return p === root || p.startsWith(root.endsWith(sep) ? root : root + sep);
}

/**
 * How a path's last component is treated: 'existing' follows links and must exist; 'create'
 * follows links where it exists and otherwise names a new entry in an existing directory;
 * 'entry' names the directory entry itself (unlink, rename, rmdir, lstat): links in the parent
 * are followed, the last component is not, and it may be neither '.' nor '..'.
 */
type Resolve = 'existing' | 'create' | 'entry';

/**
 * Resolves `path` relative to the directory `base` within its granted directory, refusing
 * absolute paths, `..` past the grant and symbolic links that lead out of it. Returns the
 * host path, or an errno.
 */
function resolveIn(ctx: GuestContext, base: OpenEntry, path: string, mode: Resolve): string | number {
  if (base.fd !== undefined) return E.NOTDIR;
  if (path.includes('\0')) return E.INVAL;
  const root = base.dir.host;
  if (isAbsolute(path)) return refused(ctx, path, base);
  if (mode === 'entry') {
    const trimmed = path.replace(/\/+$/, '');
    const slash = trimmed.lastIndexOf('/');
    const last = trimmed.slice(slash + 1);
    // The grant itself (or a name for a directory through '.' or '..') is never an entry to
    // remove or rename.
    if (last === '') return E.NOENT;
    if (last === '.' || last === '..') return E.INVAL;
    const parent = resolveIn(ctx, base, slash < 0 ? '.' : trimmed.slice(0, slash), 'existing');
    return typeof parent === 'number' ? parent : resolve(parent, last);
  }
  const target = resolve(base.path, path);
  if (!within(root, target)) return refused(ctx, path, base);
  // Follow links: the real location must still lie inside the grant.
  let real: string;
  try {
    real = realpathSync(target);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT') return errnoOf(err);
    try {
      lstatSync(target);
      return refused(ctx, path, base); // a dangling link
    } catch {
      if (mode === 'existing') return E.NOENT;
    }
    try {
      real = resolve(realpathSync(dirname(target)), basename(target));
    } catch (err2) {
      return errnoOf(err2);
    }
  }
  if (!within(root, real)) return refused(ctx, path, base);
  return real;
}

/**
 * Checks that an opened host file is the one resolved: a link swapped in between the check and
 * the open (by another process) must not lead out of the grant. Linux only (/proc/self/fd).
 */
function openedWithin(hostFd: number, root: string): boolean {
  if (process.platform !== 'linux') return true;
  try {
    return within(root, readlinkSync(`/proc/self/fd/${hostFd}`));
  } catch {
    return false;
  }
}

function refused(ctx: GuestContext, path: string, base: OpenEntry): number {
  logLine(
    ctx,
    `nuvola: refused access to '${path}': it lies outside the directory granted as '${base.dir.guest}'; ` +
      'grant directories with register(name, wasm, { wasi: { dirs: [...] } })',
  );
  return E.NOTCAPABLE;
}

function filetype(stats: Stats): number {
  if (stats.isDirectory()) return FILETYPE.DIRECTORY;
  if (stats.isFile()) return FILETYPE.REGULAR_FILE;
  if (stats.isSymbolicLink()) return FILETYPE.SYMBOLIC_LINK;
  return FILETYPE.UNKNOWN;
}

function writeFilestat(ctx: GuestContext, ptr: number, stats: Stats | undefined, what: string): void {
  const bytes = guestWritable(ctx, ptr, 64, what);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, 64);
  bytes.fill(0);
  if (stats === undefined) {
    dv.setUint8(16, FILETYPE.CHARACTER_DEVICE);
    dv.setBigUint64(24, 1n, true);
    return;
  }
  dv.setBigUint64(0, BigInt(stats.dev), true);
  dv.setBigUint64(8, BigInt(stats.ino), true);
  dv.setUint8(16, filetype(stats));
  dv.setBigUint64(24, BigInt(stats.nlink), true);
  dv.setBigUint64(32, BigInt(stats.size), true);
  dv.setBigUint64(40, toNs(stats.atimeMs), true);
  dv.setBigUint64(48, toNs(stats.mtimeMs), true);
  dv.setBigUint64(56, toNs(stats.ctimeMs), true);
}

export const wasiImports: Capability = {
  module: WASI_MODULE,
  functions: Object.fromEntries(
    [
      'args_get',
      'args_sizes_get',
      'environ_get',
      'environ_sizes_get',
      'clock_res_get',
      'clock_time_get',
      'fd_advise',
      'fd_allocate',
      'fd_close',
      'fd_datasync',
      'fd_fdstat_get',
      'fd_fdstat_set_flags',
      'fd_fdstat_set_rights',
      'fd_filestat_get',
      'fd_filestat_set_size',
      'fd_filestat_set_times',
      'fd_pread',
      'fd_prestat_get',
      'fd_prestat_dir_name',
      'fd_pwrite',
      'fd_read',
      'fd_readdir',
      'fd_renumber',
      'fd_seek',
      'fd_sync',
      'fd_tell',
      'fd_write',
      'path_create_directory',
      'path_filestat_get',
      'path_filestat_set_times',
      'path_link',
      'path_open',
      'path_readlink',
      'path_remove_directory',
      'path_rename',
      'path_symlink',
      'path_unlink_file',
      'poll_oneoff',
      'proc_exit',
      'proc_raise',
      'sched_yield',
      'random_get',
      'sock_accept',
      'sock_recv',
      'sock_send',
      'sock_shutdown',
    ].map((name) => [name, false]),
  ),
  bind(ref: ContextRef) {
    const wasiOf = (ctx: GuestContext): WasiState => ctx.wasi!;
    const entryOf = (ctx: GuestContext, fd: number): OpenEntry | undefined => wasiOf(ctx).files.get(fd);
    const notSupported = (): number => E.NOTSUP;

    const read = (
      ctx: GuestContext,
      fd: number,
      iovs: number,
      count: number,
      nread: number,
      at: bigint | undefined,
      what: string,
    ): number => {
      const wasi = wasiOf(ctx);
      let total = 0;
      if (fd === 0) {
        if (at !== undefined) return E.SPIPE;
        for (const [ptr, len] of iovecs(ctx, iovs, count, what)) {
          const n = Math.min(len, ctx.input.byteLength - wasi.stdinPos);
          if (n <= 0) break;
          guestWritable(ctx, ptr, n, what).set(ctx.input.subarray(wasi.stdinPos, wasi.stdinPos + n));
          wasi.stdinPos += n;
          total += n;
        }
      } else {
        const entry = entryOf(ctx, fd);
        if (entry === undefined || fd === 1 || fd === 2) return E.BADF;
        if (entry.fd === undefined) return E.ISDIR;
        let position = at !== undefined ? Number(at) : entry.position;
        try {
          for (const [ptr, len] of iovecs(ctx, iovs, count, what)) {
            const target = guestWritable(ctx, ptr, len, what);
            const n = readSync(entry.fd, target, 0, len, position);
            position += n;
            total += n;
            if (n < len) break;
          }
        } catch (err) {
          return errnoOf(err);
        }
        if (at === undefined) entry.position = position;
      }
      u32(ctx, nread, what, total);
      return E.SUCCESS;
    };

    const write = (
      ctx: GuestContext,
      fd: number,
      iovs: number,
      count: number,
      nwritten: number,
      at: bigint | undefined,
      what: string,
    ): number => {
      const wasi = wasiOf(ctx);
      let total = 0;
      const parts = iovecs(ctx, iovs, count, what).map(([ptr, len]) => guestBytes(ctx, ptr, len, what));
      if (fd === 1 || fd === 2) {
        if (at !== undefined) return E.SPIPE;
        for (const bytes of parts) {
          total += bytes.byteLength;
          if (fd === 1 && wasi.stdoutIsOutput) {
            if (wasi.stdoutBytes + bytes.byteLength > ctx.maxOutputBytes) {
              throw new LimitError(
                ErrorCode.OUTPUT_TOO_LARGE,
                `function '${ctx.fn}' wrote more than maxOutputBytes=${ctx.maxOutputBytes} bytes to stdout; raise it in createRuntime()`,
                { function: ctx.fn, bytes: wasi.stdoutBytes + bytes.byteLength, maxOutputBytes: ctx.maxOutputBytes },
              );
            }
            wasi.stdout.push(bytes.slice());
            wasi.stdoutBytes += bytes.byteLength;
          } else {
            logText(ctx, wasi, fd === 2 ? 0 : 1, bytes);
          }
        }
      } else {
        const entry = entryOf(ctx, fd);
        if (entry === undefined || fd === 0) return E.BADF;
        if (entry.fd === undefined) return E.ISDIR;
        if (!entry.writable) return E.BADF;
        try {
          let position = at !== undefined ? Number(at) : entry.append ? fstatSync(entry.fd).size : entry.position;
          for (const bytes of parts) {
            const n = writeSync(entry.fd, bytes, 0, bytes.byteLength, position);
            position += n;
            total += n;
          }
          if (at === undefined) entry.position = position;
        } catch (err) {
          return errnoOf(err);
        }
      }
      u32(ctx, nwritten, what, total);
      return E.SUCCESS;
    };

    const withDir = (
      ctx: GuestContext,
      fd: number,
      path: number,
      len: number,
      what: string,
      mode: Resolve,
      forWrite: boolean,
    ): string | number => {
      const base = entryOf(ctx, fd);
      if (base === undefined) return E.BADF;
      if (forWrite && !base.dir.writable) return E.ROFS;
      return resolveIn(ctx, base, guestString(ctx, path, len, what), mode);
    };

    return {
      args_get: (ptrs: number, buf: number) => writeStrings(ref.ctx, argv(ref.ctx, wasiOf(ref.ctx)), ptrs, buf, 'args_get'),
      args_sizes_get: (count: number, size: number) => sizes(ref.ctx, argv(ref.ctx, wasiOf(ref.ctx)), count, size, 'args_sizes_get'),
      environ_get: (ptrs: number, buf: number) => writeStrings(ref.ctx, wasiOf(ref.ctx).config.env, ptrs, buf, 'environ_get'),
      environ_sizes_get: (count: number, size: number) => sizes(ref.ctx, wasiOf(ref.ctx).config.env, count, size, 'environ_sizes_get'),
      clock_res_get: (id: number, out: number) => {
        if (id < 0 || id > 3) return E.INVAL;
        u64(ref.ctx, out, 1000n, 'clock_res_get');
        return E.SUCCESS;
      },
      clock_time_get: (id: number, _precision: bigint, out: number) => {
        let ns: bigint;
        if (id === 0) ns = toNs(performance.timeOrigin + performance.now());
        else if (id === 1) ns = process.hrtime.bigint();
        else if (id === 2 || id === 3) ns = BigInt(Math.round(process.cpuUsage().user * 1000));
        else return E.INVAL;
        u64(ref.ctx, out, ns, 'clock_time_get');
        return E.SUCCESS;
      },
      fd_advise: () => E.SUCCESS,
      fd_allocate: notSupported,
      fd_close: (fd: number) => {
        const wasi = wasiOf(ref.ctx);
        const entry = wasi.files.get(fd);
        if (entry === undefined || entry.preopen) return E.BADF;
        if (entry.fd !== undefined) closeQuietly(entry.fd);
        wasi.files.delete(fd);
        return E.SUCCESS;
      },
      fd_datasync: (fd: number) => {
        const entry = entryOf(ref.ctx, fd);
        if (entry?.fd === undefined) return fd <= 2 ? E.SUCCESS : E.BADF;
        fsyncSync(entry.fd);
        return E.SUCCESS;
      },
      fd_fdstat_get: (fd: number, out: number) => {
        const ctx = ref.ctx;
        const bytes = guestWritable(ctx, out, 24, 'fd_fdstat_get');
        const dv = new DataView(bytes.buffer, bytes.byteOffset, 24);
        bytes.fill(0);
        if (fd <= 2) {
          dv.setUint8(0, FILETYPE.CHARACTER_DEVICE);
          dv.setBigUint64(8, ALL_RIGHTS, true);
          return E.SUCCESS;
        }
        const entry = entryOf(ctx, fd);
        if (entry === undefined) return E.BADF;
        dv.setUint8(0, entry.fd === undefined ? FILETYPE.DIRECTORY : FILETYPE.REGULAR_FILE);
        dv.setUint16(2, entry.append ? FDFLAGS_APPEND : 0, true);
        dv.setBigUint64(8, ALL_RIGHTS, true);
        dv.setBigUint64(16, ALL_RIGHTS, true);
        return E.SUCCESS;
      },
      fd_fdstat_set_flags: (fd: number, flags: number) => {
        const entry = entryOf(ref.ctx, fd);
        if (fd <= 2) return E.SUCCESS;
        if (entry === undefined) return E.BADF;
        entry.append = (flags & FDFLAGS_APPEND) !== 0;
        return E.SUCCESS;
      },
      fd_fdstat_set_rights: () => E.SUCCESS,
      fd_filestat_get: (fd: number, out: number) => {
        const ctx = ref.ctx;
        if (fd <= 2) {
          writeFilestat(ctx, out, undefined, 'fd_filestat_get');
          return E.SUCCESS;
        }
        const entry = entryOf(ctx, fd);
        if (entry === undefined) return E.BADF;
        try {
          writeFilestat(ctx, out, entry.fd !== undefined ? fstatSync(entry.fd) : statSync(entry.path), 'fd_filestat_get');
        } catch (err) {
          return errnoOf(err);
        }
        return E.SUCCESS;
      },
      fd_filestat_set_size: (fd: number, size: bigint) => {
        const entry = entryOf(ref.ctx, fd);
        if (entry?.fd === undefined) return E.BADF;
        if (!entry.writable) return E.BADF;
        try {
          ftruncateSync(entry.fd, Number(size));
        } catch (err) {
          return errnoOf(err);
        }
        return E.SUCCESS;
      },
      fd_filestat_set_times: notSupported,
      fd_pread: (fd: number, iovs: number, count: number, offset: bigint, nread: number) =>
        read(ref.ctx, fd, iovs, count, nread, offset, 'fd_pread'),
      fd_prestat_get: (fd: number, out: number) => {
        const ctx = ref.ctx;
        const entry = entryOf(ctx, fd);
        if (entry === undefined || !entry.preopen) return E.BADF;
        const bytes = guestWritable(ctx, out, 8, 'fd_prestat_get');
        const dv = new DataView(bytes.buffer, bytes.byteOffset, 8);
        dv.setUint32(0, 0, true);
        dv.setUint32(4, encoder.encode(entry.dir.guest).byteLength, true);
        return E.SUCCESS;
      },
      fd_prestat_dir_name: (fd: number, ptr: number, len: number) => {
        const ctx = ref.ctx;
        const entry = entryOf(ctx, fd);
        if (entry === undefined || !entry.preopen) return E.BADF;
        const name = encoder.encode(entry.dir.guest);
        if (len >>> 0 < name.byteLength) return E.INVAL;
        guestWritable(ctx, ptr, name.byteLength, 'fd_prestat_dir_name').set(name);
        return E.SUCCESS;
      },
      fd_pwrite: (fd: number, iovs: number, count: number, offset: bigint, nwritten: number) =>
        write(ref.ctx, fd, iovs, count, nwritten, offset, 'fd_pwrite'),
      fd_read: (fd: number, iovs: number, count: number, nread: number) => read(ref.ctx, fd, iovs, count, nread, undefined, 'fd_read'),
      fd_readdir: (fd: number, buf: number, len: number, cookie: bigint, used: number) => {
        const ctx = ref.ctx;
        const entry = entryOf(ctx, fd);
        if (entry === undefined) return E.BADF;
        if (entry.fd !== undefined) return E.NOTDIR;
        let names: { name: string; type: number; ino: bigint }[];
        try {
          // lstat, not the dirent: it gives the inode (d_ino) and never follows a link.
          names = readdirSync(entry.path).flatMap((name) => {
            const stats = lstatSync(resolve(entry.path, name), { bigint: true, throwIfNoEntry: false });
            if (stats === undefined) return []; // removed since readdir
            const type = stats.isDirectory()
              ? FILETYPE.DIRECTORY
              : stats.isFile()
                ? FILETYPE.REGULAR_FILE
                : stats.isSymbolicLink()
                  ? FILETYPE.SYMBOLIC_LINK
                  : FILETYPE.UNKNOWN;
            return [{ name, type, ino: stats.ino }];
          });
          const here = lstatSync(entry.path, { bigint: true }).ino;
          const up = entry.preopen ? here : lstatSync(dirname(entry.path), { bigint: true }).ino;
          names.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
          names.unshift({ name: '.', type: FILETYPE.DIRECTORY, ino: here }, { name: '..', type: FILETYPE.DIRECTORY, ino: up });
        } catch (err) {
          return errnoOf(err);
        }
        const target = guestWritable(ctx, buf, len, 'fd_readdir');
        // The cookie is a u64 (an i64 here): -1 is 2^64 - 1, past the end like any other large one.
        const first = Number(BigInt.asUintN(64, cookie) < BigInt(names.length) ? cookie : names.length);
        let at = 0;
        for (let i = first; i < names.length && at < target.byteLength; i++) {
          const name = encoder.encode(names[i]!.name);
          const header = new Uint8Array(24);
          const hv = new DataView(header.buffer);
          hv.setBigUint64(0, BigInt(i + 1), true);
          hv.setBigUint64(8, names[i]!.ino, true);
          hv.setUint32(16, name.byteLength, true);
          hv.setUint8(20, names[i]!.type);
          // A record that does not fit is cut; the guest sees the buffer full and asks again.
          const record = new Uint8Array(24 + name.byteLength);
          record.set(header);
          record.set(name, 24);
          const n = Math.min(record.byteLength, target.byteLength - at);
          target.set(record.subarray(0, n), at);
          at += n;
        }
        u32(ctx, used, 'fd_readdir', at);
        return E.SUCCESS;
      },
      fd_renumber: notSupported,
      fd_seek: (fd: number, offset: bigint, whence: number, out: number) => {
        const ctx = ref.ctx;
        if (fd <= 2) return E.SPIPE;
        const entry = entryOf(ctx, fd);
        if (entry === undefined) return E.BADF;
        if (entry.fd === undefined) return E.ISDIR;
        let base: number;
        if (whence === 0) base = 0;
        else if (whence === 1) base = entry.position;
        else if (whence === 2) base = fstatSync(entry.fd).size;
        else return E.INVAL;
        const next = base + Number(offset);
        if (next < 0) return E.INVAL;
        entry.position = next;
        u64(ctx, out, BigInt(next), 'fd_seek');
        return E.SUCCESS;
      },
      fd_sync: (fd: number) => {
        const entry = entryOf(ref.ctx, fd);
        if (entry?.fd === undefined) return fd <= 2 ? E.SUCCESS : E.BADF;
        fsyncSync(entry.fd);
        return E.SUCCESS;
      },
      fd_tell: (fd: number, out: number) => {
        const entry = entryOf(ref.ctx, fd);
        if (fd <= 2) return E.SPIPE;
        if (entry?.fd === undefined) return E.BADF;
        u64(ref.ctx, out, BigInt(entry.position), 'fd_tell');
        return E.SUCCESS;
      },
      fd_write: (fd: number, iovs: number, count: number, nwritten: number) =>
        write(ref.ctx, fd, iovs, count, nwritten, undefined, 'fd_write'),
      path_create_directory: (fd: number, path: number, len: number) => {
        const target = withDir(ref.ctx, fd, path, len, 'path_create_directory', 'create', true);
        if (typeof target === 'number') return target;
        try {
          mkdirSync(target);
        } catch (err) {
          return errnoOf(err);
        }
        return E.SUCCESS;
      },
      path_filestat_get: (fd: number, flags: number, path: number, len: number, out: number) => {
        const ctx = ref.ctx;
        const follow = (flags & LOOKUP_SYMLINK_FOLLOW) !== 0;
        const target = withDir(ctx, fd, path, len, 'path_filestat_get', follow ? 'existing' : 'entry', false);
        if (typeof target === 'number') return target;
        try {
          writeFilestat(ctx, out, follow ? statSync(target) : lstatSync(target), 'path_filestat_get');
        } catch (err) {
          return errnoOf(err);
        }
        return E.SUCCESS;
      },
      path_filestat_set_times: notSupported,
      path_link: notSupported,
      path_open: (
        fd: number,
        _dirflags: number,
        path: number,
        len: number,
        oflags: number,
        rightsBase: bigint,
        _rightsInheriting: bigint,
        fdflags: number,
        opened: number,
      ) => {
        const ctx = ref.ctx;
        const wasi = wasiOf(ctx);
        const base = entryOf(ctx, fd);
        if (base === undefined) return E.BADF;
        const wantsWrite =
          (oflags & (OFLAGS.CREAT | OFLAGS.TRUNC)) !== 0 || (rightsBase & RIGHT_FD_WRITE) !== 0n || (fdflags & FDFLAGS_APPEND) !== 0;
        const guestPath = guestString(ctx, path, len, 'path_open');
        const target = resolveIn(ctx, base, guestPath, (oflags & OFLAGS.CREAT) === 0 ? 'existing' : 'create');
        if (typeof target === 'number') return target;
        if (wantsWrite && !base.dir.writable) {
          // A read-only grant: say so once in the log, and answer like a read-only file system.
          logLine(
            ctx,
            `nuvola: refused to open '${guestPath}' for writing: the directory granted as '${base.dir.guest}' is read-only; grant it with writable: true`,
          );
          return E.ROFS;
        }
        let stats: Stats | undefined;
        try {
          stats = statSync(target);
        } catch {
          stats = undefined;
        }
        if (stats?.isDirectory() || (oflags & OFLAGS.DIRECTORY) !== 0) {
          if (stats === undefined) return E.NOENT;
          if (!stats.isDirectory()) return E.NOTDIR;
          if (wantsWrite && (oflags & (OFLAGS.CREAT | OFLAGS.TRUNC)) !== 0) return E.ISDIR;
          if (wasi.files.size >= MAX_OPEN_FILES) return E.MFILE;
          const newFd = wasi.nextFd++;
          wasi.files.set(newFd, {
            path: target,
            dir: base.dir,
            fd: undefined,
            position: 0,
            append: false,
            writable: false,
            preopen: false,
          });
          u32(ctx, opened, 'path_open', newFd);
          return E.SUCCESS;
        }
        let flags = wantsWrite ? fsc.O_RDWR : fsc.O_RDONLY;
        if (oflags & OFLAGS.CREAT) flags |= fsc.O_CREAT;
        if (oflags & OFLAGS.EXCL) flags |= fsc.O_EXCL;
        if (oflags & OFLAGS.TRUNC) flags |= fsc.O_TRUNC;
        if (wasi.files.size >= MAX_OPEN_FILES) return E.MFILE;
        let hostFd: number;
        try {
          // Closed at the end of the call; if the worker is terminated first (a guest looping
          // past its timeout), Node closes it (workers track raw fds: trackUnmanagedFds).
          hostFd = openSync(target, flags | fsc.O_NOFOLLOW, 0o644);
        } catch (err) {
          return errnoOf(err);
        }
        if (!openedWithin(hostFd, base.dir.host)) {
          closeQuietly(hostFd);
          return refused(ctx, guestPath, base);
        }
        const newFd = wasi.nextFd++;
        wasi.files.set(newFd, {
          path: target,
          dir: base.dir,
          fd: hostFd,
          position: 0,
          append: (fdflags & FDFLAGS_APPEND) !== 0,
          writable: wantsWrite,
          preopen: false,
        });
        u32(ctx, opened, 'path_open', newFd);
        return E.SUCCESS;
      },
      path_readlink: notSupported,
      path_remove_directory: (fd: number, path: number, len: number) => {
        const target = withDir(ref.ctx, fd, path, len, 'path_remove_directory', 'entry', true);
        if (typeof target === 'number') return target;
        try {
          rmdirSync(target);
        } catch (err) {
          return errnoOf(err);
        }
        return E.SUCCESS;
      },
      path_rename: (fd: number, oldPath: number, oldLen: number, newFd: number, newPath: number, newLen: number) => {
        const from = withDir(ref.ctx, fd, oldPath, oldLen, 'path_rename', 'entry', true);
        if (typeof from === 'number') return from;
        const to = withDir(ref.ctx, newFd, newPath, newLen, 'path_rename', 'entry', true);
        if (typeof to === 'number') return to;
        try {
          renameSync(from, to);
        } catch (err) {
          return errnoOf(err);
        }
        return E.SUCCESS;
      },
      path_symlink: notSupported,
      path_unlink_file: (fd: number, path: number, len: number) => {
        const target = withDir(ref.ctx, fd, path, len, 'path_unlink_file', 'entry', true);
        if (typeof target === 'number') return target;
        try {
          unlinkSync(target);
        } catch (err) {
          return errnoOf(err);
        }
        return E.SUCCESS;
      },
      poll_oneoff: notSupported,
      proc_exit: (code: number) => {
        throw new WasiExit(code >>> 0);
      },
      proc_raise: notSupported,
      sched_yield: () => E.SUCCESS,
      random_get: (ptr: number, len: number) => {
        const target = guestWritable(ref.ctx, ptr, len, 'random_get');
        for (let at = 0; at < target.byteLength; at += 65536)
          crypto.getRandomValues(target.subarray(at, Math.min(target.byteLength, at + 65536)));
        return E.SUCCESS;
      },
      sock_accept: notSupported,
      sock_recv: notSupported,
      sock_send: notSupported,
      sock_shutdown: notSupported,
    };
  },
};
