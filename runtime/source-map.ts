/**
 * Guest source positions for stack frames. `nuvola build` embeds the compiler's source map in
 * the module (custom section `nuvola.sourcemap`: `{ sources, mappings }` of a version 3 map
 * whose generated columns are byte offsets in the module, as Binaryen writes them). At
 * register (main thread) {@link sourceTable} decodes it and moves every offset onto the
 * module as rewritten for snapshots, so that a worker can turn the engine's frames
 * (`wasm-function[12]:0x1a3`, offsets into the module it runs) into `file.ts:line:column`
 * with one binary search ({@link mapFrames}, worker thread).
 */
import type { BodyMap } from './snapshot/code.js';
import { readLeb } from './wasm-binary.js';

/** The custom section `nuvola build` writes the source map into. */
export const SOURCE_MAP_SECTION = 'nuvola.sourcemap';

/** Positions by offset in the rewritten module; sent to workers with the function. */
export interface SourceTable {
  sources: string[];
  /** Sorted ascending. */
  offsets: Uint32Array;
  source: Uint32Array;
  /** 1-based. */
  line: Uint32Array;
  /** 1-based. */
  column: Uint32Array;
  /** The defined function each position lies in. */
  fn: Uint32Array;
}

const CUSTOM = 0;
const CODE = 10;

interface Section {
  id: number;
  /** Offset of the payload in the module. */
  start: number;
  end: number;
}

function sections(bytes: Uint8Array): Section[] {
  const out: Section[] = [];
  let pos = 8;
  while (pos < bytes.length) {
    const id = bytes[pos]!;
    const size = readLeb(bytes, pos + 1);
    out.push({ id, start: size.next, end: size.next + size.value });
    pos = size.next + size.value;
  }
  return out;
}

function customName(bytes: Uint8Array, section: Section): { name: string; payload: number } {
  const len = readLeb(bytes, section.start);
  return { name: new TextDecoder().decode(bytes.subarray(len.next, len.next + len.value)), payload: len.next + len.value };
}

/** Offsets in the module of each defined function's body (after its size). */
function bodyStarts(bytes: Uint8Array): { start: number; end: number }[] {
  const code = sections(bytes).find((s) => s.id === CODE);
  if (code === undefined) return [];
  const count = readLeb(bytes, code.start);
  let pos = count.next;
  const out: { start: number; end: number }[] = [];
  for (let i = 0; i < count.value; i++) {
    const size = readLeb(bytes, pos);
    out.push({ start: size.next, end: size.next + size.value });
    pos = size.next + size.value;
  }
  return out;
}

/** The module without its custom sections named `name`. */
export function dropCustomSection(bytes: Uint8Array, name: string): Uint8Array {
  const drop = sections(bytes).filter((s) => s.id === CUSTOM && customName(bytes, s).name === name);
  if (drop.length === 0) return bytes;
  const parts: Uint8Array[] = [];
  let from = 0;
  for (const s of drop) {
    // The section starts at its id byte: the payload's start less the size's LEB and the id.
    let header = s.start - 1;
    while (header > 0 && (bytes[header - 1]! & 0x80) !== 0) header--;
    parts.push(bytes.subarray(from, header - 1));
    from = s.end;
  }
  parts.push(bytes.subarray(from));
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Adds a `nuvola.sourcemap` custom section holding `map` (sources and mappings) to a module. */
export function embedSourceMap(bytes: Uint8Array, map: { sources: string[]; mappings: string }): Uint8Array {
  const encoder = new TextEncoder();
  const name = encoder.encode(SOURCE_MAP_SECTION);
  const body = encoder.encode(JSON.stringify({ version: 3, sources: map.sources, mappings: map.mappings }));
  const leb = (n: number): number[] => {
    const out: number[] = [];
    do {
      let b = n & 0x7f;
      n = Math.floor(n / 128);
      if (n !== 0) b |= 0x80;
      out.push(b);
    } while (n !== 0);
    return out;
  };
  const payload = [...leb(name.length), ...name];
  const size = leb(payload.length + body.length);
  const out = new Uint8Array(bytes.length + 1 + size.length + payload.length + body.length);
  out.set(bytes);
  let at = bytes.length;
  out[at++] = CUSTOM;
  out.set(size, at);
  at += size.length;
  out.set(payload, at);
  at += payload.length;
  out.set(body, at);
  return out;
}

const BASE64 = new Map([...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'].map((c, i) => [c, i]));

/** The values of one mapping segment (base64 VLQ). */
function vlq(segment: string): number[] {
  const out: number[] = [];
  let value = 0;
  let shift = 0;
  for (const c of segment) {
    const digit = BASE64.get(c);
    if (digit === undefined) throw new Error(`bad base64 digit '${c}'`);
    value += (digit & 31) * 2 ** shift;
    if (digit & 32) {
      shift += 5;
      continue;
    }
    out.push(value & 1 ? -Math.floor(value / 2) : Math.floor(value / 2));
    value = 0;
    shift = 0;
  }
  return out;
}

/**
 * The source table of `original` (the bytes as registered), with offsets moved onto
 * `rewritten` through the rewrite's body maps; `undefined` when the module carries no source
 * map or it cannot be read (positions are a help, never a reason to refuse a module).
 */
export function sourceTable(original: Uint8Array, rewritten: Uint8Array, bodyMaps: readonly BodyMap[]): SourceTable | undefined {
  try {
    const section = sections(original)
      .filter((s) => s.id === CUSTOM)
      .map((s) => ({ s, ...customName(original, s) }))
      .find((c) => c.name === SOURCE_MAP_SECTION);
    if (section === undefined) return undefined;
    const map = JSON.parse(new TextDecoder().decode(original.subarray(section.payload, section.s.end))) as {
      sources?: unknown;
      mappings?: unknown;
    };
    if (!Array.isArray(map.sources) || typeof map.mappings !== 'string') return undefined;
    const from = bodyStarts(original);
    const to = bodyStarts(rewritten);
    const rows: [number, number, number, number, number][] = [];
    let offset = 0;
    let source = 0;
    let line = 0;
    let column = 0;
    let fn = 0;
    for (const segment of map.mappings.split(/[,;]/)) {
      if (segment === '') continue;
      const v = vlq(segment);
      offset += v[0] ?? 0;
      if (v.length < 4) continue;
      source += v[1]!;
      line += v[2]!;
      column += v[3]!;
      // Offsets ascend: the function holding this one is at or after the last one found.
      while (fn < from.length && from[fn]!.end <= offset) fn++;
      const body = from[fn];
      if (body === undefined || offset < body.start || to[fn] === undefined) continue;
      rows.push([moved(offset - body.start, bodyMaps[fn]) + to[fn]!.start, source, line + 1, column + 1, fn]);
    }
    rows.sort((a, b) => a[0] - b[0]);
    return {
      sources: map.sources.map(String),
      offsets: Uint32Array.from(rows, (r) => r[0]),
      source: Uint32Array.from(rows, (r) => r[1]),
      line: Uint32Array.from(rows, (r) => r[2]),
      column: Uint32Array.from(rows, (r) => r[3]),
      fn: Uint32Array.from(rows, (r) => r[4]),
    };
  } catch {
    return undefined;
  }
}

/** An offset in an original body → the same instruction's offset in the rewritten body. */
function moved(at: number, anchors: BodyMap): number {
  if (anchors === undefined) return at;
  let best = -1;
  for (let i = 0; i < anchors.length; i += 2) {
    if (anchors[i + 1]! > at) break;
    best = i;
  }
  // Before the first copied run (the locals' declarations): the header only grew.
  if (best < 0) return at;
  return anchors[best]! + (at - anchors[best + 1]!);
}

/** The row of the last position at or before `offset`, or -1. */
function rowOf(table: SourceTable, offset: number): number {
  let lo = 0;
  let hi = table.offsets.length - 1;
  let found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    if (table.offsets[mid]! <= offset) {
      found = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return found;
}

const STDLIB = '~lib/';

function positionText(table: SourceTable, row: number): string {
  return `${table.sources[table.source[row]!] ?? '?'}:${table.line[row]}:${table.column[row]}`;
}

/**
 * The positions of one engine frame, innermost first. Code the optimizer inlined from the
 * standard library (an array's index check) keeps the library's position and has no frame of
 * its own; the caller's is the last position before it in the same function that lies in the
 * guest's own sources, so both are given.
 */
function positionsOf(table: SourceTable, offset: number): string[] {
  const row = rowOf(table, offset);
  if (row < 0) return [];
  const here = positionText(table, row);
  if (!here.startsWith(STDLIB)) return [here];
  for (let i = row - 1; i >= 0 && table.fn[i] === table.fn[row]; i--) {
    const text = positionText(table, i);
    if (!text.startsWith(STDLIB)) return [`${here} (inlined)`, text];
  }
  return [here];
}

const FRAME = /^\s*at (?:(\S+) \()?wasm:\/\/wasm\/[^:]*:wasm-function\[(\d+)\]:0x([0-9a-f]+)\)?/;

/**
 * The guest's frames of a JavaScript stack, innermost first: `name (file.ts:line:col)` where
 * the table knows the position, else the engine's own text. At most 16.
 */
export function mapFrames(stack: string, table: SourceTable | undefined): string[] {
  const out: string[] = [];
  for (const line of stack.split('\n')) {
    if (!line.includes('wasm://')) continue;
    const m = FRAME.exec(line);
    const at = m && table ? positionsOf(table, parseInt(m[3]!, 16)) : [];
    if (at.length === 0) out.push(line.trim());
    for (const [i, position] of at.entries()) out.push(m?.[1] && i === at.length - 1 ? `${m[1]} (${position})` : position);
    if (out.length >= 16) break;
  }
  return out;
}

/** The first frame in the guest's own code (not AssemblyScript's standard library `~lib/`). */
export function ownFrame(frames: readonly string[]): string | undefined {
  for (const frame of frames) {
    if (frame.endsWith('(inlined)')) continue;
    const at = /([^\s()]+\.ts:\d+:\d+)\)?$/.exec(frame)?.[1];
    if (at !== undefined && !at.startsWith('~lib/')) return at;
  }
  return undefined;
}
