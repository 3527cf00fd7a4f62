/**
 * Worker thread. The descriptor table of one WASI instance: stdio, preopened directories and
 * what the guest opened, each with its rights, and the host descriptor behind it. Every
 * directory (preopens included) is a real host descriptor opened O_DIRECTORY|O_NOFOLLOW:
 * paths are reached relative to it (paths.ts), never by a host path string, so renaming
 * things around cannot move a descriptor out of its grant.
 *
 * Host descriptors are bounded twice: `MAX_OPEN_FILES` per call (EMFILE in the guest), and
 * `MAX_PROCESS_FILES` for all WASI calls of the process together, on every worker, suspended
 * ones included (ENFILE in the guest), so that many calls cannot run the process out of
 * descriptors.
 */
import { closeSync, openSync, constants as fsc } from 'node:fs';
import { DIR_RIGHTS, FILE_RIGHTS, STDIN_RIGHTS, STDOUT_RIGHTS } from './abi.js';
import type { WasiConfig, WasiDir } from './config.js';

export { NO_WASI, type WasiConfig, type WasiDir } from './config.js';

/** Linux's O_PATH (the same on x86-64 and arm64; Node does not export it). */
const O_PATH = 0o10000000;

/** Host descriptors one call may hold at once (preopens it used included); one more gets EMFILE. */
export const MAX_OPEN_FILES = 256;
/** Host descriptors all WASI calls of the process may hold at once; one more gets ENFILE. */
export const MAX_PROCESS_FILES = 4096;

/** The process-wide count of WASI host descriptors, as one thread sees it. */
export interface FileBudget {
  /** Counts one descriptor in; false (nothing counted) when the process holds `MAX_PROCESS_FILES`. */
  take(): boolean;
  give(): void;
}

/**
 * A budget shared by the workers: each counts into its own slot of `counts` (the pool zeroes
 * a slot when its worker exits, so nothing a lost worker held stays counted) and checks the
 * sum.
 */
export function sharedFileBudget(counts: Int32Array, slot: number, max = MAX_PROCESS_FILES): FileBudget {
  return {
    take() {
      Atomics.add(counts, slot, 1);
      // Plain reads: the sum only needs to be about right (two threads at the cap at once may both back off).
      let total = 0;
      for (let i = 0; i < counts.length; i++) total += counts[i]!;
      if (total <= max) return true;
      Atomics.sub(counts, slot, 1);
      return false;
    },
    give() {
      Atomics.sub(counts, slot, 1);
    },
  };
}

/** A budget for one thread alone (nuvola's tests and benchmarks on the current thread). */
export function localFileBudget(max = MAX_PROCESS_FILES): FileBudget {
  let held = 0;
  return {
    take: () => (held < max ? (held++, true) : false),
    give: () => void held--,
  };
}

export type FdKind = 'stdin' | 'stdout' | 'stderr' | 'file' | 'dir';

/** One guest descriptor. */
export interface FdEntry {
  kind: FdKind;
  /** Host descriptor; -1 for stdio, and for a preopen not used yet in this call. */
  host: number;
  /** The grant a file or directory lies in (undefined for stdio). */
  grant: WasiDir | undefined;
  /** The guest's name of a preopened directory (fd_prestat_get). */
  preopen: string | undefined;
  base: bigint;
  inheriting: bigint;
  /** fdflags: APPEND and NONBLOCK are kept; the others are refused. */
  flags: number;
  position: number;
}

export interface FdTable {
  entries: Map<number, FdEntry>;
  budget: FileBudget;
  /** Host descriptors this call opened (preopens included), for the per-call cap. */
  open: number;
  /** Whether the call changed the table (opened, closed, renumbered, changed rights or flags). */
  changed: boolean;
}

export function newFdTable(config: WasiConfig, budget: FileBudget): FdTable {
  const entries = new Map<number, FdEntry>();
  const stdio = (kind: FdKind, base: bigint): FdEntry => ({
    kind,
    host: -1,
    grant: undefined,
    preopen: undefined,
    base,
    inheriting: 0n,
    flags: 0,
    position: 0,
  });
  entries.set(0, stdio('stdin', STDIN_RIGHTS));
  entries.set(1, stdio('stdout', STDOUT_RIGHTS));
  entries.set(2, stdio('stderr', STDOUT_RIGHTS));
  config.dirs.forEach((grant, i) => {
    entries.set(3 + i, {
      kind: 'dir',
      host: -1,
      grant,
      preopen: grant.guest,
      base: DIR_RIGHTS,
      inheriting: DIR_RIGHTS | FILE_RIGHTS,
      flags: 0,
      position: 0,
    });
  });
  return { entries, budget, open: 0, changed: false };
}

/** Whether a descriptor may be opened, or which cap stops it. */
export type Budget = 'ok' | 'call' | 'process';

/** Counts one more host descriptor for this call, or says which cap stops it. */
export function take(table: FdTable): Budget {
  if (table.open >= MAX_OPEN_FILES) return 'call';
  if (!table.budget.take()) return 'process';
  table.open++;
  return 'ok';
}

/** Gives back what `take` counted, for a descriptor that was not opened after all. */
export function untake(table: FdTable): void {
  table.open--;
  table.budget.give();
}

/** Closes a host descriptor this call counted. */
export function release(table: FdTable, host: number): void {
  try {
    closeSync(host);
  } catch {
    // Already closed: nothing to give back.
  }
  untake(table);
}

/**
 * The host descriptor of a directory entry, opening a preopen on its first use in a call, or
 * which budget is spent.
 */
export function dirHost(table: FdTable, entry: FdEntry): number | Budget {
  if (entry.host >= 0) return entry.host;
  const left = take(table);
  if (left !== 'ok') return left;
  try {
    entry.host = openGrant(entry.grant!.host);
  } catch (err) {
    untake(table);
    throw err;
  }
  return entry.host;
}

/**
 * Opens a grant's directory. Its path was resolved at registration (realpath: no link in it),
 * so it is opened one component at a time, each O_NOFOLLOW: a link put anywhere on the path
 * since — by the host, or by a guest holding a writable grant that contains this one — fails
 * the open (ENOTDIR: O_DIRECTORY|O_NOFOLLOW on a link) instead of leading the grant elsewhere.
 */
export function openGrant(path: string): number {
  // The directories on the way are opened O_PATH (search permission is all a lookup needs, as
  // for the kernel's own walk); the grant itself for reading (fd_readdir).
  const parts = path.split('/').filter((part) => part !== '');
  const last = fsc.O_RDONLY | fsc.O_DIRECTORY | fsc.O_NOFOLLOW | fsc.O_NONBLOCK;
  const passing = O_PATH | fsc.O_DIRECTORY | fsc.O_NOFOLLOW;
  let fd = openSync('/', parts.length === 0 ? last : passing);
  try {
    for (let i = 0; i < parts.length; i++) {
      const next = openSync(`/proc/self/fd/${fd}/${parts[i]!}`, i === parts.length - 1 ? last : passing);
      closeSync(fd);
      fd = next;
    }
  } catch (err) {
    closeSync(fd);
    throw err;
  }
  return fd;
}

/** Closes an entry's host descriptor (no two entries share one: fd_renumber moves). */
export function closeEntry(table: FdTable, entry: FdEntry): void {
  if (entry.host < 0) return;
  release(table, entry.host);
  entry.host = -1;
}

/** Ends a call: closes every host descriptor it opened and, if it changed the table, rebuilds it. */
export function resetFdTable(table: FdTable, config: WasiConfig): FdTable {
  for (const entry of table.entries.values()) closeEntry(table, entry);
  if (!table.changed) return table;
  return newFdTable(config, table.budget);
}
