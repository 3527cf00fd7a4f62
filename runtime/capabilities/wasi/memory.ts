/**
 * Worker thread. WASI's layouts in guest memory (integers, iovecs, strings, filestat), every
 * access through context.ts's bounds-checked views (a range outside memory traps with
 * E_GUEST_POINTER).
 */
import type { BigIntStats, Stats } from 'node:fs';
import { guestBytes, guestWritable, type GuestContext } from '../context.js';
import { FILETYPE } from './abi.js';

const decoder = new TextDecoder();
export const encoder = new TextEncoder();

export function u32(ctx: GuestContext, ptr: number, what: string, value: number): void {
  const bytes = guestWritable(ctx, ptr, 4, what);
  new DataView(bytes.buffer, bytes.byteOffset, 4).setUint32(0, value, true);
}

export function u64(ctx: GuestContext, ptr: number, value: bigint, what: string): void {
  const bytes = guestWritable(ctx, ptr, 8, what);
  new DataView(bytes.buffer, bytes.byteOffset, 8).setBigUint64(0, BigInt.asUintN(64, value), true);
}

/**
 * Most iovecs one read or write may pass (Linux's IOV_MAX; more is EINVAL, as readv(2) says):
 * without it a guest could hand an array as large as its memory, built here as one JavaScript
 * array entry per iovec.
 */
export const IOV_MAX = 1024;

/** The (pointer, length) pairs of an iovec array, bounds-checked. */
export function iovecs(ctx: GuestContext, iovs: number, count: number, what: string): [number, number][] {
  const table = guestBytes(ctx, iovs, (count >>> 0) * 8, what);
  const dv = new DataView(table.buffer, table.byteOffset, table.byteLength);
  const out: [number, number][] = [];
  for (let i = 0; i < count >>> 0; i++) out.push([dv.getUint32(i * 8, true), dv.getUint32(i * 8 + 4, true)]);
  return out;
}

export function guestString(ctx: GuestContext, ptr: number, len: number, what: string): string {
  return decoder.decode(guestBytes(ctx, ptr, len, what));
}

export function toNs(ms: number): bigint {
  return BigInt(Math.round(ms * 1e6));
}

export function filetype(stats: { isDirectory(): boolean; isFile(): boolean; isSymbolicLink(): boolean }): number {
  if (stats.isDirectory()) return FILETYPE.DIRECTORY;
  if (stats.isFile()) return FILETYPE.REGULAR_FILE;
  if (stats.isSymbolicLink()) return FILETYPE.SYMBOLIC_LINK;
  return FILETYPE.UNKNOWN;
}

/** Writes a filestat; `stats` undefined: a character device (stdio). Times in nanoseconds. */
export function writeFilestat(ctx: GuestContext, ptr: number, stats: Stats | BigIntStats | undefined, what: string): void {
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
  if (typeof stats.atimeMs === 'bigint') {
    const big = stats as BigIntStats;
    dv.setBigUint64(40, big.atimeNs, true);
    dv.setBigUint64(48, big.mtimeNs, true);
    dv.setBigUint64(56, big.ctimeNs, true);
  } else {
    const small = stats as Stats;
    dv.setBigUint64(40, toNs(small.atimeMs), true);
    dv.setBigUint64(48, toNs(small.mtimeMs), true);
    dv.setBigUint64(56, toNs(small.ctimeMs), true);
  }
}
