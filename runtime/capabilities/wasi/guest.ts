/**
 * Worker thread. Host imports of module `wasi_snapshot_preview1`: WASI preview 1 for guests
 * built by other toolchains (C and Rust through wasi-libc, AssemblyScript through
 * `@assemblyscript/wasi-shim`), written for nuvola rather than borrowed from `node:wasi` or
 * `@wasmer/wasi` (guest/README.md has the measurements and the reasons). It passes the public
 * wasi-testsuite (test/wasi-conformance.test.ts).
 *
 * Per call: stdin reads the invocation's input; stdout is the output of a WASI command
 * (`abi: 'wasi'`) and goes to the log for SDK guests; stderr goes to the function's log, line
 * by line; `proc_exit(code)` ends the call with `code` as its return code. Arguments and the
 * environment are the registration's. There is no file system but the directories the
 * registration grants (read-only unless `writable`), reached only through directory
 * descriptors (wasi/paths.ts: Linux only), no network, and no blocking sleep (`poll_oneoff`
 * answers at once when a descriptor is ready, ENOTSUP when it would have to wait: a worker
 * thread serves many guests).
 *
 * Every pointer goes through the bounds-checked views of context.ts: a guest passing a range
 * outside its memory traps with E_GUEST_POINTER.
 */
import { ErrorCode, LimitError } from '../../errors.js';
import { guestBytes, guestWritable, type ContextRef, type GuestContext } from '../context.js';
import { guestCapability, type Slot } from '../capability.js';
import { E, R } from './abi.js';
import * as fdOps from './fd-ops.js';
import * as pathOps from './path-ops.js';
import { encoder, IOV_MAX, iovecs, toNs, u32, u64 } from './memory.js';
import { endCall, logText, newWasiState, type WasiState } from './state.js';
import { localFileBudget, type FileBudget } from './fd-table.js';
import { WasiExit } from './exit.js';

export { WASI_MODULE, WASI_START } from './manifest.js';

export { localFileBudget, NO_WASI, sharedFileBudget, type FileBudget, type WasiConfig, type WasiDir } from './fd-table.js';
export type { WasiState } from './state.js';

export { WasiExit } from './exit.js';

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

const EVENTTYPE = { CLOCK: 0, FD_READ: 1, FD_WRITE: 2 } as const;

/**
 * Most subscriptions one poll_oneoff may pass (more is EINVAL): far above what a call can use
 * (256 descriptors, two events each, and clocks), and it keeps a guest from making the worker
 * build one event object per 48 bytes of its memory.
 */
const MAX_SUBSCRIPTIONS = 4096;

/**
 * poll_oneoff without waiting: descriptors (stdio, files) are always ready, so their events
 * come at once; a poll that only a clock could end would block the worker and answers ENOTSUP,
 * unless its timeout has passed already.
 */
function pollOneoff(ctx: GuestContext, wasi: WasiState, inPtr: number, outPtr: number, count: number, nevents: number): number {
  const n = count >>> 0;
  if (n === 0 || n > MAX_SUBSCRIPTIONS) return E.INVAL;
  const subs = guestBytes(ctx, inPtr, n * 48, 'poll_oneoff');
  const sv = new DataView(subs.buffer, subs.byteOffset, subs.byteLength);
  const events: { userdata: bigint; error: number; type: number; nbytes: bigint }[] = [];
  const clocks: { userdata: bigint; due: boolean }[] = [];
  for (let i = 0; i < n; i++) {
    const userdata = sv.getBigUint64(i * 48, true);
    const type = sv.getUint8(i * 48 + 8);
    if (type === EVENTTYPE.CLOCK) {
      const id = sv.getUint32(i * 48 + 16, true);
      const timeout = sv.getBigUint64(i * 48 + 24, true);
      const absolute = (sv.getUint16(i * 48 + 40, true) & 1) !== 0;
      if (id > 3) {
        events.push({ userdata, error: E.INVAL, type, nbytes: 0n });
        continue;
      }
      const now = id === 0 ? toNs(performance.timeOrigin + performance.now()) : process.hrtime.bigint();
      clocks.push({ userdata, due: absolute ? timeout <= now : timeout === 0n });
    } else if (type === EVENTTYPE.FD_READ || type === EVENTTYPE.FD_WRITE) {
      const fd = sv.getUint32(i * 48 + 16, true);
      const entry = wasi.fds.entries.get(fd);
      const right = type === EVENTTYPE.FD_READ ? R.FD_READ : R.FD_WRITE;
      let error: number = E.SUCCESS;
      let nbytes = 0n;
      if (entry === undefined) error = E.BADF;
      else if ((entry.base & (right | R.POLL_FD_READWRITE)) === 0n) error = E.NOTCAPABLE;
      else if (entry.kind === 'stdin') nbytes = BigInt(Math.max(0, ctx.input.byteLength - wasi.stdinPos));
      events.push({ userdata, error, type, nbytes });
    } else {
      events.push({ userdata, error: E.INVAL, type, nbytes: 0n });
    }
  }
  if (events.length === 0) {
    for (const clock of clocks)
      if (clock.due) events.push({ userdata: clock.userdata, error: E.SUCCESS, type: EVENTTYPE.CLOCK, nbytes: 0n });
    if (events.length === 0) return E.NOTSUP;
  }
  const out = guestWritable(ctx, outPtr, events.length * 32, 'poll_oneoff');
  const ov = new DataView(out.buffer, out.byteOffset, out.byteLength);
  out.fill(0);
  events.forEach((event, i) => {
    ov.setBigUint64(i * 32, event.userdata, true);
    ov.setUint16(i * 32 + 8, event.error, true);
    ov.setUint8(i * 32 + 10, event.type);
    ov.setBigUint64(i * 32 + 16, event.nbytes, true);
  });
  u32(ctx, nevents, 'poll_oneoff', events.length);
  return E.SUCCESS;
}

/** An instance's WASI state (stdin position, stdout, open files); undefined for a component. */
type WasiSlot = WasiState | undefined;

/**
 * What the worker gives WASI: the host descriptors its imports may hold (a worker's count is
 * process-wide, `sharedFileBudget`). Without one, each instance counts its own.
 */
export type WasiDeps = FileBudget;

export default guestCapability<WasiSlot, WasiDeps>({
  newSlot: (spec, files) =>
    spec.abi === 'component' ? undefined : newWasiState(spec.wasi, spec.abi === 'wasi', files ?? localFileBudget()),
  endCall(ctx, wasi, how) {
    if (wasi === undefined) return;
    // A WASI command's stdout is its output, unless it wrote one through nuvola:io.
    const stdout = endCall(ctx, wasi);
    if (how === 'returned' && stdout !== undefined) ctx.output ??= stdout;
  },
  bind(ref: ContextRef, slot: Slot<WasiSlot>) {
    const wasiOf = (ctx: GuestContext): WasiState => slot(ctx)!;
    const tableOf = (): WasiState['fds'] => slot(ref.ctx)!.fds;
    const notSupported = (): number => E.NOTSUP;
    /** Sockets: none is ever open, so a descriptor is either unknown or not a socket. */
    const notSocket = (fd: number): number => (tableOf().entries.has(fd) ? E.NOTSOCK : E.BADF);

    const read = (fd: number, iovs: number, count: number, nread: number, at: bigint | undefined, what: string): number => {
      const ctx = ref.ctx;
      const wasi = wasiOf(ctx);
      const entry = fdOps.withRight(wasi.fds, fd, R.FD_READ);
      if (typeof entry === 'number') return entry;
      if (count >>> 0 > IOV_MAX) return E.INVAL;
      let total = 0;
      if (entry.kind === 'stdin') {
        if (at !== undefined) return E.SPIPE;
        for (const [ptr, len] of iovecs(ctx, iovs, count, what)) {
          const n = Math.min(len, ctx.input.byteLength - wasi.stdinPos);
          if (n <= 0) break;
          guestWritable(ctx, ptr, n, what).set(ctx.input.subarray(wasi.stdinPos, wasi.stdinPos + n));
          wasi.stdinPos += n;
          total += n;
        }
      } else if (entry.kind === 'file') {
        const done = fdOps.fileRead(ctx, entry, iovs, count, at, what);
        if (typeof done !== 'number') return done[0];
        total = done;
      } else {
        return E.BADF;
      }
      u32(ctx, nread, what, total);
      return E.SUCCESS;
    };

    const write = (fd: number, iovs: number, count: number, nwritten: number, at: bigint | undefined, what: string): number => {
      const ctx = ref.ctx;
      const wasi = wasiOf(ctx);
      const entry = fdOps.withRight(wasi.fds, fd, R.FD_WRITE);
      if (typeof entry === 'number') return entry;
      if (count >>> 0 > IOV_MAX) return E.INVAL;
      let total = 0;
      if (entry.kind === 'stdout' || entry.kind === 'stderr') {
        if (at !== undefined) return E.SPIPE;
        for (const [ptr, len] of iovecs(ctx, iovs, count, what)) {
          const bytes = guestBytes(ctx, ptr, len, what);
          total += bytes.byteLength;
          if (entry.kind === 'stdout' && wasi.stdoutIsOutput) {
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
            logText(ctx, wasi, entry.kind === 'stderr' ? 0 : 1, bytes);
          }
        }
      } else if (entry.kind === 'file') {
        const done = fdOps.fileWrite(ctx, entry, iovs, count, at, what);
        if (typeof done !== 'number') return done[0];
        total = done;
      } else {
        return E.BADF;
      }
      u32(ctx, nwritten, what, total);
      return E.SUCCESS;
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
      fd_advise: (fd: number, _offset: bigint, _len: bigint, advice: number) => {
        const entry = fdOps.withRight(tableOf(), fd, R.FD_ADVISE);
        if (typeof entry === 'number') return entry;
        return advice >= 0 && advice <= 5 ? E.SUCCESS : E.INVAL;
      },
      fd_allocate: (fd: number) => {
        const entry = fdOps.withRight(tableOf(), fd, R.FD_ALLOCATE);
        return typeof entry === 'number' ? entry : E.NOTSUP;
      },
      fd_close: (fd: number) => fdOps.fdClose(tableOf(), fd),
      fd_datasync: (fd: number) => fdOps.fdSync(tableOf(), fd, R.FD_DATASYNC),
      fd_fdstat_get: (fd: number, out: number) => fdOps.fdFdstatGet(ref.ctx, tableOf(), fd, out),
      fd_fdstat_set_flags: (fd: number, flags: number) => fdOps.fdFdstatSetFlags(tableOf(), fd, flags),
      fd_fdstat_set_rights: (fd: number, base: bigint, inheriting: bigint) => fdOps.fdFdstatSetRights(tableOf(), fd, base, inheriting),
      fd_filestat_get: (fd: number, out: number) => fdOps.fdFilestatGet(ref.ctx, tableOf(), fd, out),
      fd_filestat_set_size: (fd: number, size: bigint) => fdOps.fdFilestatSetSize(tableOf(), fd, size),
      fd_filestat_set_times: (fd: number, atim: bigint, mtim: bigint, flags: number) =>
        fdOps.fdFilestatSetTimes(tableOf(), fd, atim, mtim, flags),
      fd_pread: (fd: number, iovs: number, count: number, offset: bigint, nread: number) =>
        read(fd, iovs, count, nread, offset, 'fd_pread'),
      fd_prestat_get: (fd: number, out: number) => fdOps.fdPrestatGet(ref.ctx, tableOf(), fd, out),
      fd_prestat_dir_name: (fd: number, ptr: number, len: number) => fdOps.fdPrestatDirName(ref.ctx, tableOf(), fd, ptr, len),
      fd_pwrite: (fd: number, iovs: number, count: number, offset: bigint, nwritten: number) =>
        write(fd, iovs, count, nwritten, offset, 'fd_pwrite'),
      fd_read: (fd: number, iovs: number, count: number, nread: number) => read(fd, iovs, count, nread, undefined, 'fd_read'),
      fd_readdir: (fd: number, buf: number, len: number, cookie: bigint, used: number) =>
        fdOps.fdReaddir(ref.ctx, tableOf(), fd, buf, len, cookie, used),
      fd_renumber: (from: number, to: number) => fdOps.fdRenumber(tableOf(), from, to),
      fd_seek: (fd: number, offset: bigint, whence: number, out: number) => fdOps.fdSeek(ref.ctx, tableOf(), fd, offset, whence, out),
      fd_sync: (fd: number) => fdOps.fdSync(tableOf(), fd, R.FD_SYNC),
      fd_tell: (fd: number, out: number) => fdOps.fdSeek(ref.ctx, tableOf(), fd, 0n, 1, out),
      fd_write: (fd: number, iovs: number, count: number, nwritten: number) => write(fd, iovs, count, nwritten, undefined, 'fd_write'),
      path_create_directory: (fd: number, path: number, len: number) => pathOps.pathCreateDirectory(ref.ctx, tableOf(), fd, path, len),
      path_filestat_get: (fd: number, flags: number, path: number, len: number, out: number) =>
        pathOps.pathFilestatGet(ref.ctx, tableOf(), fd, flags, path, len, out),
      path_filestat_set_times: (fd: number, flags: number, path: number, len: number, atim: bigint, mtim: bigint, fst: number) =>
        pathOps.pathFilestatSetTimes(ref.ctx, tableOf(), fd, flags, path, len, atim, mtim, fst),
      path_link: (oldFd: number, oldFlags: number, oldPath: number, oldLen: number, newFd: number, newPath: number, newLen: number) =>
        pathOps.pathLink(ref.ctx, tableOf(), oldFd, oldFlags, oldPath, oldLen, newFd, newPath, newLen),
      path_open: (
        fd: number,
        dirflags: number,
        path: number,
        len: number,
        oflags: number,
        rightsBase: bigint,
        rightsInheriting: bigint,
        fdflags: number,
        opened: number,
      ) => pathOps.pathOpen(ref.ctx, tableOf(), fd, dirflags, path, len, oflags, rightsBase, rightsInheriting, fdflags, opened),
      path_readlink: (fd: number, path: number, len: number, buf: number, bufLen: number, used: number) =>
        pathOps.pathReadlink(ref.ctx, tableOf(), fd, path, len, buf, bufLen, used),
      path_remove_directory: (fd: number, path: number, len: number) => pathOps.pathRemoveDirectory(ref.ctx, tableOf(), fd, path, len),
      path_rename: (fd: number, oldPath: number, oldLen: number, newFd: number, newPath: number, newLen: number) =>
        pathOps.pathRename(ref.ctx, tableOf(), fd, oldPath, oldLen, newFd, newPath, newLen),
      path_symlink: (oldPath: number, oldLen: number, fd: number, newPath: number, newLen: number) =>
        pathOps.pathSymlink(ref.ctx, tableOf(), oldPath, oldLen, fd, newPath, newLen),
      path_unlink_file: (fd: number, path: number, len: number) => pathOps.pathUnlinkFile(ref.ctx, tableOf(), fd, path, len),
      poll_oneoff: (inPtr: number, outPtr: number, count: number, nevents: number) =>
        pollOneoff(ref.ctx, wasiOf(ref.ctx), inPtr, outPtr, count, nevents),
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
      sock_accept: (fd: number) => notSocket(fd),
      sock_recv: (fd: number) => notSocket(fd),
      sock_send: (fd: number) => notSocket(fd),
      sock_shutdown: (fd: number) => notSocket(fd),
    };
  },
});
