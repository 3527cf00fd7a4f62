/**
 * The fuzzer's generated guest: a core module, encoded here byte by byte, that imports every
 * host function (with its real signature, from `signatures.ts`) and exports `main`, which runs
 * a program it reads from its input:
 *
 *   [u32 steps][u32 0] then `steps` records of STEP_BYTES: [u32 import index][u32 0][8 bytes per argument]
 *
 * followed by data the arguments may point at. Before each step `main` reads the input again
 * to address 0, so a step that overwrote the program (a host write to a random pointer) does
 * not change the next step. An index past the imports is a step that does nothing. `main`
 * itself never traps: any failure comes from a host import.
 */
import { IMPORTS, valType, type ImportSig, type ValType } from './signatures.js';

/** Most steps one invocation runs. */
export const MAX_STEPS = 8;
/** Most parameters an import has (kernels.run). */
export const MAX_PARAMS = 11;
export const STEP_BYTES = 8 + 8 * MAX_PARAMS;
/** Where the data that arguments point at starts. */
export const DATA_START = 1024;
/** The guest's memory: one page, fixed (minimum = maximum). */
export const MEMORY_BYTES = 65536;

const TYPE_CODE: Record<ValType, number> = { i32: 0x7f, i64: 0x7e, f32: 0x7d, f64: 0x7c };
const LOAD: Record<ValType, [opcode: number, align: number]> = { i32: [0x28, 2], i64: [0x29, 3], f32: [0x2a, 2], f64: [0x2b, 3] };

function uleb(value: number): number[] {
  const out: number[] = [];
  let v = value >>> 0;
  do {
    let byte = v & 0x7f;
    v >>>= 7;
    if (v !== 0) byte |= 0x80;
    out.push(byte);
  } while (v !== 0);
  return out;
}

function sleb(value: number): number[] {
  const out: number[] = [];
  let v = value | 0;
  for (;;) {
    const byte = v & 0x7f;
    v >>= 7;
    if ((v === 0 && (byte & 0x40) === 0) || (v === -1 && (byte & 0x40) !== 0)) {
      out.push(byte);
      return out;
    }
    out.push(byte | 0x80);
  }
}

const str = (s: string): number[] => {
  const bytes = [...new TextEncoder().encode(s)];
  return [...uleb(bytes.length), ...bytes];
};
const vec = (items: number[][]): number[] => [...uleb(items.length), ...items.flat()];
const section = (id: number, body: number[]): number[] => [id, ...uleb(body.length), ...body];

/**
 * The module's bytes, importing `imports` (all host functions by default). With `catchErrors`
 * each step runs inside a `try … catch_all` (the legacy exception-handling opcodes, which the
 * engine ships): a host error no longer ends the call, and the next step runs anyway — what a
 * hostile guest would do. Pass it `imports` without `nuvola:region`: region accessors are
 * compiled into the code, and the rewrite cannot follow exception handling (register would
 * refuse it).
 */
export function fuzzGuestModule(options: { catchErrors?: boolean; imports?: readonly ImportSig[] } = {}): Uint8Array {
  const imports = options.imports ?? IMPORTS;
  const types: string[] = [];
  const typeBodies: number[][] = [];
  const typeOf = (params: ValType[], results: ValType[]): number => {
    const key = `${params.join(',')}->${results.join(',')}`;
    let index = types.indexOf(key);
    if (index < 0) {
      index = types.push(key) - 1;
      typeBodies.push([0x60, ...vec(params.map((p) => [TYPE_CODE[p]])), ...vec(results.map((r) => [TYPE_CODE[r]]))]);
    }
    return index;
  };
  const importEntries = imports.map((imp) => [
    ...str(imp.module),
    ...str(imp.name),
    0x00,
    ...uleb(typeOf(imp.params.map(valType), imp.result === undefined ? [] : [imp.result])),
  ]);
  const mainType = typeOf([], ['i32']);
  const indexOf = (module: string, name: string): number => {
    const i = imports.findIndex((imp) => imp.module === module && imp.name === name);
    if (i < 0) throw new Error(`the fuzz guest needs ${module}.${name}`);
    return i;
  };
  const inputSize = indexOf('nuvola:io', 'input_size');
  const inputRead = indexOf('nuvola:io', 'input_read');

  const I = 0; // local: step number
  const BASE = 1; // local: address of the step's record
  const k = imports.length;
  const body: number[] = [];
  body.push(0x03, 0x40); // loop
  body.push(0x41, ...sleb(0), 0x10, ...uleb(inputSize), 0x10, ...uleb(inputRead), 0x1a);
  // if (i >= steps || i >= MAX_STEPS) return 0
  body.push(0x20, I, 0x41, ...sleb(0), 0x28, 2, 0, 0x4f);
  body.push(0x20, I, 0x41, ...sleb(MAX_STEPS), 0x4f, 0x72);
  body.push(0x04, 0x40, 0x41, ...sleb(0), 0x0f, 0x0b);
  // base = 8 + i * STEP_BYTES
  body.push(0x20, I, 0x41, ...sleb(STEP_BYTES), 0x6c, 0x41, ...sleb(8), 0x6a, 0x21, BASE);
  if (options.catchErrors) body.push(0x06, 0x40); // try
  body.push(0x02, 0x40); // block $done
  for (let c = 0; c < k; c++) body.push(0x02, 0x40); // block per case, innermost is case 0
  body.push(0x20, BASE, 0x28, 2, 0);
  body.push(0x0e, ...uleb(k), ...Array.from({ length: k }, (_, c) => uleb(c)).flat(), ...uleb(k));
  imports.forEach((imp, c) => {
    body.push(0x0b); // end of case c's block: its code follows
    imp.params.forEach((kind, j) => {
      const [op, align] = LOAD[valType(kind)];
      body.push(0x20, BASE, op, align, ...uleb(8 + 8 * j));
    });
    body.push(0x10, ...uleb(c));
    if (imp.result !== undefined) body.push(0x1a);
    body.push(0x0c, ...uleb(k - 1 - c)); // br $done
  });
  body.push(0x0b); // end $done
  if (options.catchErrors) body.push(0x19, 0x0b); // catch_all, end
  body.push(0x20, I, 0x41, ...sleb(1), 0x6a, 0x21, I);
  body.push(0x0c, 0); // br loop
  body.push(0x0b); // end loop
  body.push(0x00, 0x0b); // unreachable (never reached), end of function
  const code = [1, 2, 0x7f, ...body]; // one group of locals: two i32
  const fn = [...uleb(code.length), ...code];

  const magicAndVersion = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
  return new Uint8Array([
    ...magicAndVersion,
    ...section(1, vec(typeBodies)),
    ...section(2, vec(importEntries)),
    ...section(3, vec([uleb(mainType)])),
    ...section(5, vec([[0x01, ...uleb(MEMORY_BYTES / 65536), ...uleb(MEMORY_BYTES / 65536)]])),
    ...section(
      7,
      vec([
        [...str('main'), 0x00, ...uleb(k)],
        [...str('memory'), 0x02, 0],
      ]),
    ),
    ...section(10, vec([fn])),
  ]);
}

/** One step of a program: which import (an index into the module's imports) and its arguments. */
export interface Step {
  import: number;
  args: (number | bigint)[];
}

/** The input that makes `main` run `steps` (at most MAX_STEPS) with `data` at DATA_START. */
export function encodeProgram(imports: readonly ImportSig[], steps: readonly Step[], data: Uint8Array): Uint8Array {
  if (steps.length > MAX_STEPS) throw new Error(`at most ${MAX_STEPS} steps`);
  const bytes = new Uint8Array(DATA_START + data.byteLength);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, steps.length, true);
  steps.forEach((step, i) => {
    const base = 8 + i * STEP_BYTES;
    view.setUint32(base, step.import, true);
    const params = imports[step.import]?.params ?? [];
    step.args.forEach((arg, j) => {
      const at = base + 8 + 8 * j;
      const type = valType(params[j] ?? 'int');
      if (type === 'i64') view.setBigInt64(at, BigInt.asIntN(64, BigInt(arg)), true);
      else if (type === 'f32') view.setFloat32(at, Number(arg), true);
      else if (type === 'f64') view.setFloat64(at, Number(arg), true);
      else view.setInt32(at, Number(arg) | 0, true);
    });
  });
  bytes.set(data, DATA_START);
  return bytes;
}
