/**
 * Worker thread. Setting a file's times to the nanosecond, either of them alone: Node's
 * `futimes`/`lutimes` take both times as a double of seconds (libuv rounds them) and have no
 * UTIME_OMIT, so `fd_filestat_set_times` and `path_filestat_set_times` run coreutils' `touch`
 * (utimensat(2) with nanoseconds and UTIME_OMIT) on the object's `/proc/<pid>/fd/…` path.
 */
import { createRequire } from 'node:module';
import { E, FSTFLAGS } from './abi.js';

/** node:child_process, loaded by the first call that sets times (rare), not with the package. */
let loaded: typeof import('node:child_process') | undefined;
function childProcess(): typeof import('node:child_process') {
  loaded ??= createRequire(import.meta.url)('node:child_process') as typeof import('node:child_process');
  return loaded;
}

/** errno of a bad fstflags combination (a time given and "now" at once, or unknown bits), else undefined. */
export function badFstflags(flags: number): number | undefined {
  if ((flags & ~0xf) !== 0) return E.INVAL;
  if ((flags & FSTFLAGS.ATIM) !== 0 && (flags & FSTFLAGS.ATIM_NOW) !== 0) return E.INVAL;
  if ((flags & FSTFLAGS.MTIM) !== 0 && (flags & FSTFLAGS.MTIM_NOW) !== 0) return E.INVAL;
  return undefined;
}

function stamp(ns: bigint): string {
  const s = BigInt.asUintN(64, ns);
  return `@${s / 1_000_000_000n}.${(s % 1_000_000_000n).toString().padStart(9, '0')}`;
}

/**
 * Sets the times `flags` names on `target`, a `/proc/<pid>/fd/<n>` path (the open object
 * itself), or `/proc/<pid>/fd/<dir>/<leaf>` with `nofollow` (the entry, never what a link
 * points to). The caller has checked the flags and that the target exists.
 */
export function setTimes(target: string, nofollow: boolean, atim: bigint, mtim: bigint, flags: number): number {
  const runs: string[][] = [];
  if ((flags & FSTFLAGS.ATIM) !== 0) runs.push(['-a', '-d', stamp(atim)]);
  else if ((flags & FSTFLAGS.ATIM_NOW) !== 0) runs.push(['-a']);
  if ((flags & FSTFLAGS.MTIM) !== 0) runs.push(['-m', '-d', stamp(mtim)]);
  else if ((flags & FSTFLAGS.MTIM_NOW) !== 0) runs.push(['-m']);
  for (const args of runs) {
    const run = childProcess().spawnSync('touch', ['-c', ...(nofollow ? ['-h'] : []), ...args, '--', target], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    if (run.error !== undefined) return E.NOTSUP;
    if (run.status !== 0)
      return /Permission denied/.test(String(run.stderr)) ? E.ACCES : /Read-only/.test(String(run.stderr)) ? E.ROFS : E.IO;
  }
  return E.SUCCESS;
}

/** The `/proc` path of this process's host descriptor `fd` (for another process: `touch`). */
export function procPath(fd: number, leaf?: string): string {
  return leaf === undefined ? `/proc/${process.pid}/fd/${fd}` : `/proc/${process.pid}/fd/${fd}/${leaf}`;
}
