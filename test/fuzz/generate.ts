/**
 * Seeded random programs for the fuzz guest: which imports to call and with what, favouring
 * edge values (0, -1, the i32 limits, the memory size give or take a little, lengths that
 * wrap a pointer past 2^32) and, about half the time, arguments that mean something (a key
 * that exists, a registered function, a valid iovec) so calls get past the first check.
 */
import { DATA_START, MAX_STEPS, MEMORY_BYTES, encodeProgram, type Step } from './guest-module.js';
import type { ArgKind, ImportSig } from './signatures.js';

/** mulberry32: small, fast, and the same sequence for the same seed everywhere. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export class Random {
  readonly next: () => number;
  constructor(seed: number) {
    this.next = prng(seed);
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }
  u32(): number {
    return (this.next() * 2 ** 32) >>> 0;
  }
}

const M = MEMORY_BYTES;
/** Edge values of an i32 argument. */
const EDGE_I32 = [0, 1, 2, 4, 8, -1, -2, 0x7fffffff, -0x80000000, M, M - 1, M + 1, M - 4, M - 8, M + 4, M / 2, 1024, 0xfffffff0 | 0];
const EDGE_COUNT = [0, 1, 2, 3, 4, 16, 100, 4096, 16383, 16384, 16385, M, 2 ** 28 - 1, 2 ** 28, 0x7fffffff, -1, -0x80000000];
const EDGE_ID = [0, 1, 2, 3, 4, 5, -1, 0x7fffffff, -0x80000000, 64];
const EDGE_I64 = [0n, 1n, -1n, 2n ** 63n - 1n, -(2n ** 63n), 2n ** 32n, BigInt(M), 2n ** 53n + 1n];
const EDGE_FLOAT = [0, -0, NaN, Infinity, -Infinity, 1.5, -1, 3.4e38, 1e-45, 2 ** 31];

/** The data a program's arguments may point at: named blobs at fixed offsets from DATA_START. */
class Data {
  private readonly parts: Uint8Array[] = [];
  private size = 0;
  readonly keys: [number, number][] = [];
  readonly names: [number, number][] = [];
  readonly blobs: [number, number][] = [];

  add(bytes: Uint8Array, into?: [number, number][]): [number, number] {
    const at = DATA_START + this.size;
    this.parts.push(bytes);
    this.size += bytes.byteLength;
    const pad = (4 - (this.size % 4)) % 4;
    this.parts.push(new Uint8Array(pad));
    this.size += pad;
    const range: [number, number] = [at, bytes.byteLength];
    into?.push(range);
    this.blobs.push(range);
    return range;
  }

  bytes(): Uint8Array {
    const out = new Uint8Array(this.size);
    let at = 0;
    for (const p of this.parts) {
      out.set(p, at);
      at += p.byteLength;
    }
    return out;
  }
}

const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);

/** Names of functions a chain call may target, besides garbage: set by the harness. */
export interface Targets {
  functions: string[];
  keys: string[];
  paths: string[];
}

function fillData(r: Random, targets: Targets): Data {
  const d = new Data();
  for (const k of targets.keys) d.add(utf8(k), d.keys);
  d.add(new Uint8Array([0xff, 0xfe, 0x80]), d.keys); // not UTF-8
  d.add(new Uint8Array(0), d.keys);
  if (r.chance(0.1)) d.add(utf8('k'.repeat(1025)), d.keys); // longer than a key may be
  for (const f of targets.functions) d.add(utf8(f), d.names);
  for (const p of targets.paths) d.add(utf8(p), d.names);
  d.add(new Uint8Array([0xc3, 0x28]), d.names);
  // Payloads, floats, an AssemblyScript string (length header then UTF-16), iovecs, a framed list.
  const payload = d.add(Uint8Array.from({ length: 1 + r.int(48) }, () => r.int(256)));
  for (let i = 0; i < 2; i++) d.add(Uint8Array.from({ length: r.int(48) }, () => r.int(256)));
  const floats = new Float32Array(r.pick([1, 4, 16, 64]));
  floats.forEach((_, i) => (floats[i] = r.pick(EDGE_FLOAT)));
  d.add(new Uint8Array(floats.buffer));
  const text = 'fuzz ✓';
  const asString = new Uint8Array(4 + text.length * 2);
  new DataView(asString.buffer).setUint32(0, text.length * 2, true);
  for (let i = 0; i < text.length; i++) new DataView(asString.buffer).setUint16(4 + 2 * i, text.charCodeAt(i), true);
  const [strAt] = d.add(asString);
  d.blobs.push([strAt + 4, text.length * 2]);
  const iov = new DataView(new ArrayBuffer(16));
  iov.setUint32(0, payload[0], true);
  iov.setUint32(4, payload[1], true);
  iov.setUint32(8, r.pick([0, M - 8, 0xfffffff0, 40000]), true);
  iov.setUint32(12, r.pick([0, 8, 16, 0x7fffffff, 0xffffffff]), true);
  d.add(new Uint8Array(iov.buffer));
  const framed = new DataView(new ArrayBuffer(16));
  framed.setUint32(0, r.pick([1, 2, 0xffffffff]), true);
  framed.setUint32(4, r.pick([4, 8, 3, 0xfffffff0]), true);
  d.add(new Uint8Array(framed.buffer));
  return d;
}

/** An i32 pointer: a blob or free memory past the program (with probability `sane`), else an edge value or any. */
function pointer(r: Random, d: Data, sane: number): number {
  if (r.chance(sane)) return r.chance(0.5) ? r.pick(d.blobs)[0] : 32768 + 4 * r.int(4096);
  return r.chance(0.7) ? r.pick(EDGE_I32) : r.u32() | 0;
}

/** A (pointer, length) pair: a blob as it is or free memory (with probability `sane`), else an edge pair or one that wraps past 2^32. */
function pair(r: Random, d: Data, pool: [number, number][], sane: number): [number, number] {
  if (r.chance(sane)) {
    const roll = r.next();
    if (roll < 0.6 && pool.length > 0) return r.pick(pool);
    if (roll < 0.8) return r.pick(d.blobs);
    return [32768 + r.int(32768), r.pick([0, 1, 8, 64, 4096, 32768])];
  }
  if (r.chance(0.7)) return [pointer(r, d, 0.3), r.pick(EDGE_I32)];
  const back = 1 + r.int(64);
  return [(2 ** 32 - back) | 0, back + r.int(128)];
}

function argsFor(r: Random, d: Data, imp: ImportSig, sane: number): (number | bigint)[] {
  const args: (number | bigint)[] = [];
  const params = imp.params;
  for (let j = 0; j < params.length; j++) {
    const kind: ArgKind = params[j]!;
    if ((kind === 'ptr' || kind === 'key' || kind === 'name') && params[j + 1] === 'len') {
      const [p, n] = pair(r, d, kind === 'key' ? d.keys : kind === 'name' ? d.names : d.blobs, sane);
      args.push(p, n);
      j++;
      continue;
    }
    switch (kind) {
      case 'ptr':
      case 'key':
      case 'name':
        args.push(pointer(r, d, sane));
        break;
      case 'len':
      case 'int':
        args.push(r.chance(sane) ? r.int(16) : r.chance(0.7) ? r.pick(EDGE_I32) : r.u32() | 0);
        break;
      case 'count':
        args.push(r.chance(sane) ? r.int(64) : r.pick(EDGE_COUNT));
        break;
      case 'id':
        args.push(r.chance(sane) ? r.int(6) : r.chance(0.8) ? r.pick(EDGE_ID) : r.u32() | 0);
        break;
      case 'ms':
        // A long sleep only ends at the timeout: rare, so a run stays short.
        args.push(r.chance(0.01) ? 0x7fffffff : r.pick([0, 0, 1, 2, -1, -0x80000000]));
        break;
      case 'i64':
        args.push(r.chance(0.8) ? r.pick(EDGE_I64) : BigInt(r.u32()) * BigInt(r.u32()));
        break;
      case 'f32':
      case 'f64':
        args.push(r.chance(0.7) ? r.pick(EDGE_FLOAT) : (r.next() - 0.5) * 1e6);
        break;
    }
  }
  return args;
}

export interface Program {
  steps: Step[];
  input: Uint8Array;
}

/**
 * A random program of 1..MAX_STEPS calls, imports chosen by `pickImport`. Each program draws how
 * sane its arguments are (how often a pointer is a real blob, a count small, an id one that may
 * exist), so some programs get deep into an import and others hammer its first checks.
 */
export function randomProgram(r: Random, imports: readonly ImportSig[], targets: Targets, pickImport: (r: Random) => number): Program {
  const d = fillData(r, targets);
  const sane = r.pick([0.2, 0.6, 0.9]);
  const count = 1 + r.int(MAX_STEPS);
  const steps: Step[] = [];
  for (let i = 0; i < count; i++) {
    const index = r.chance(0.01) ? imports.length + r.int(4) : pickImport(r);
    const imp = imports[index];
    steps.push({ import: index, args: imp === undefined ? [] : argsFor(r, d, imp, sane) });
  }
  return { steps, input: encodeProgram(imports, steps, d.bytes()) };
}

/** A readable form of a program, for a failure report. */
export function describe(imports: readonly ImportSig[], steps: readonly Step[]): string {
  return steps
    .map((s) => {
      const imp = imports[s.import];
      return imp === undefined ? `(no-op ${s.import})` : `${imp.module}.${imp.name}(${s.args.map(String).join(', ')})`;
    })
    .join('; ');
}
