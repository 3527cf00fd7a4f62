/**
 * Worker thread. Resolves a guest path relative to a directory descriptor without ever
 * handing the host a path that could lead elsewhere (Linux only).
 *
 * Each component is opened O_DIRECTORY|O_NOFOLLOW relative to the previous directory's
 * descriptor, through `/proc/self/fd/<fd>/<name>`: the kernel resolves `/proc/self/fd/<fd>` to
 * the open directory itself, wherever it has been moved since, so the lookup of `<name>` happens
 * in that directory. Symbolic links are followed here, not by the kernel: relative targets are
 * read and walked like the rest of the path (40 expansions at most: ELOOP), absolute ones are
 * refused (ENOTCAPABLE), and `..` never climbs above the descriptor the path started from
 * (ENOTCAPABLE). What is left is one directory descriptor and one name without '/' (`leaf`),
 * on which the operation acts: `op('/proc/self/fd/<dir>/<leaf>')`.
 */
import { closeSync, lstatSync, openSync, readlinkSync, constants as fsc } from 'node:fs';
import { E, errnoOf } from './abi.js';

/** Symbolic links one path may expand (Linux's limit). */
export const MAX_SYMLINK_EXPANSIONS = 40;
/** Directories one path may descend into at once (each holds a descriptor while it is walked). */
const MAX_DEPTH = 128;

/** The host path of `leaf` in the directory open as host descriptor `dir`. */
export function at(dir: number, leaf: string): string {
  return `/proc/self/fd/${dir}/${leaf}`;
}

/**
 * How the last component is treated. `follow`: symbolic links are followed (by the walk);
 * `nofollow`: the last component is looked up itself (lstat, readlink, open with O_NOFOLLOW);
 * `entry`: it names a directory entry to create, remove or rename — never '.' or '..' (EINVAL),
 * and a trailing '/' stays on it for the kernel to check (unlinkat, mkdirat, renameat and
 * symlinkat never follow the last component, slash or not).
 *
 * In the first two a trailing '/' makes the last component a directory to walk into (as the
 * kernel would follow it), and the leaf is '.'.
 */
export type LeafMode = 'follow' | 'nofollow' | 'entry';

/** A walked path: close it with `done()` once the operation is over. */
export class Walk {
  /** The starting directory, then each directory descended into (owned: closed by done()). */
  private readonly stack: number[];
  private expansions = 0;
  /** The last component: one name, maybe with a trailing '/' in `entry` mode. */
  leaf = '.';

  constructor(base: number) {
    this.stack = [base];
  }

  /** The host descriptor of the directory the leaf lies in. */
  get dir(): number {
    return this.stack[this.stack.length - 1]!;
  }

  /** The host path of the leaf. */
  get path(): string {
    return at(this.dir, this.leaf);
  }

  done(): void {
    for (let i = this.stack.length - 1; i > 0; i--) closeQuietly(this.stack[i]!);
    this.stack.length = 1;
  }

  private up(): number | undefined {
    if (this.stack.length === 1) return E.NOTCAPABLE;
    closeQuietly(this.stack.pop()!);
    return undefined;
  }

  /** The components of a link's target, or an errno (loops, absolute targets). */
  private link(name: string): string | number {
    if (++this.expansions > MAX_SYMLINK_EXPANSIONS) return E.LOOP;
    let target: string;
    try {
      target = readlinkSync(at(this.dir, name));
    } catch (err) {
      return errnoOf(err);
    }
    if (target.startsWith('/')) return E.NOTCAPABLE;
    return target;
  }

  /** Walks into each of `parts` as a directory. */
  descend(parts: string[]): number | undefined {
    for (const part of parts) {
      if (part === '' || part === '.') continue;
      if (part === '..') {
        const err = this.up();
        if (err !== undefined) return err;
        continue;
      }
      if (this.stack.length > MAX_DEPTH) return E.NAMETOOLONG;
      try {
        this.stack.push(openSync(at(this.dir, part), fsc.O_RDONLY | fsc.O_DIRECTORY | fsc.O_NOFOLLOW | fsc.O_NONBLOCK));
        continue;
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code !== 'ELOOP' && code !== 'ENOTDIR') return errnoOf(err);
        if (lstatSync(at(this.dir, part), { throwIfNoEntry: false })?.isSymbolicLink() !== true) return errnoOf(err);
      }
      const target = this.link(part);
      if (typeof target === 'number') return target;
      const err = this.descend(target.split('/'));
      if (err !== undefined) return err;
    }
    return undefined;
  }

  /**
   * Settles the last component `name` (`slash`: the path ended in '/'). In `follow` mode a
   * link found there is expanded and walked; a link swapped in afterwards is caught by the
   * operation itself (O_NOFOLLOW, lstat, AT_SYMLINK_NOFOLLOW), which then fails with ELOOP or
   * acts on the link.
   */
  finish(name: string, slash: boolean, mode: LeafMode): number | undefined {
    if (mode === 'entry') {
      if (name === '.' || name === '..') return E.INVAL;
      this.leaf = slash ? `${name}/` : name;
      return undefined;
    }
    if (name === '..' || slash) {
      const err = this.descend([name]);
      if (err !== undefined) return err;
      this.leaf = '.';
      return undefined;
    }
    this.leaf = name;
    if (mode === 'nofollow' || name === '.') return undefined;
    if (lstatSync(this.path, { throwIfNoEntry: false })?.isSymbolicLink() !== true) return undefined;
    return this.expand();
  }

  /** Replaces a leaf that is a symbolic link by its target, walked from the leaf's directory. */
  expand(): number | undefined {
    const target = this.link(this.leaf);
    if (typeof target === 'number') return target;
    return this.walkPath(target, 'follow');
  }

  /** Walks a whole relative path (a guest's, or a link's target). */
  walkPath(path: string, mode: LeafMode): number | undefined {
    if (path === '') return E.NOENT;
    if (path.startsWith('/')) return E.NOTCAPABLE;
    const parts = path.split('/');
    const slash = parts.length > 1 && parts[parts.length - 1] === '';
    while (parts.length > 1 && parts[parts.length - 1] === '') parts.pop();
    const last = parts.pop()!;
    const err = this.descend(parts);
    if (err !== undefined) return err;
    return this.finish(last, slash, mode);
  }
}

/** Walks `path` from the directory open as `base`; a number is an errno. */
export function resolve(base: number, path: string, mode: LeafMode): Walk | number {
  if (path.includes('\0')) return E.INVAL;
  const walk = new Walk(base);
  let err: number | undefined;
  try {
    err = walk.walkPath(path, mode);
  } catch (thrown) {
    // A lookup the kernel refused (lstat of a name over NAME_MAX, a directory without search
    // permission…): the guest's errno, and the directories walked so far closed.
    walk.done();
    if (typeof (thrown as NodeJS.ErrnoException).syscall !== 'string') throw thrown;
    return errnoOf(thrown);
  }
  if (err !== undefined) {
    walk.done();
    return err;
  }
  return walk;
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // Already closed.
  }
}
