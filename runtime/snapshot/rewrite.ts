/**
 * Main thread. Rewrites a checked, memory-capped module at register so that an instance can
 * be snapshotted, restored and reset from the host:
 *
 * - the memory becomes an import (`nuvola:snapshot.memory`), so a restore hands the new
 *   instance a memory already filled with the snapshot instead of running start-up code;
 * - two functions are added that save every mutable global to the dirty-map memory and load
 *   them back (AssemblyScript keeps its heap and stack pointers in globals it does not
 *   export): one Wasm call sets them all, where a WebAssembly.Global per global would cost
 *   an object at every instantiation and a host call per global at every reset;
 * - the start section is removed (its function exported) and active data segments become
 *   passive: the one boot instance applies them by hand, restored instances never do;
 * - memory writes are tracked in a dirty map (code.ts), imported as a second memory.
 *
 * Function, global and memory indices of the original stay as they were: everything added is
 * appended, and the two memory imports take the indices 0 (the guest's) and 1 (the map).
 */
import { readLeb, writeLeb } from '../wasm-binary.js';
import { instrumentCode, Uninstrumentable, Writer, type BodyMap, type CodeLayout } from './code.js';
import { SectionReader } from './section-reader.js';
import {
  EXPORT_ARM,
  EXPORT_FUEL,
  EXPORT_LOAD,
  EXPORT_SAVE,
  EXPORT_START_SECTION,
  IMPORT_DIRTY,
  IMPORT_INTERRUPT,
  IMPORT_MEMORY,
  IMPORT_REGION,
  regionTableOffset,
  SNAPSHOT_MODULE,
  type DataSegment,
  type SnapshotLayout,
} from './layout.js';

const enum Section {
  Custom = 0,
  Type = 1,
  Import = 2,
  Function = 3,
  Memory = 5,
  Global = 6,
  Export = 7,
  Start = 8,
  Code = 10,
  Data = 11,
}

/** Where each known section goes, for inserting a section the module lacked. */
const ORDER: Record<number, number> = { 1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 13: 6, 6: 7, 7: 8, 8: 9, 9: 10, 12: 11, 10: 12, 11: 13 };

/** The region capability's module, and its imports that are host calls rather than accessors (guest/sdk/nuvola/abi.ts). */
const REGION_MODULE = 'nuvola:region';
const REGION_HOST_CALLS = ['map', 'grow'];

const NUMERIC: Record<number, 'i32' | 'i64' | 'f32' | 'f64'> = { 0x7f: 'i32', 0x7e: 'i64', 0x7d: 'f32', 0x7c: 'f64' };

/** A module nuvola cannot snapshot; `register` reports it as `E_INVALID_MODULE`. */
export class SnapshotUnsupported extends Error {}

export interface PreparedModule {
  bytes: Uint8Array;
  layout: SnapshotLayout;
  dataSegments: DataSegment[];
  /** Per original function, where its rewritten body's bytes came from (empty when the code was copied unchanged). */
  bodyMaps: BodyMap[];
}

interface Entry {
  id: number;
  payload: Uint8Array;
}

/** A reader of a section's bytes whose failures are {@link SnapshotUnsupported}. */
function newCursor(bytes: Uint8Array, pos = 0): SectionReader {
  return new SectionReader(bytes, (why) => new SnapshotUnsupported(why), pos);
}

function nameBytes(name: string): number[] {
  const utf8 = new TextEncoder().encode(name);
  return [...writeLeb(utf8.length), ...utf8];
}

/**
 * Rewrites `bytes` (already checked and memory-capped by module-check.ts: one 32-bit memory,
 * only function imports). Throws {@link SnapshotUnsupported} for a module it cannot prepare.
 */
/**
 * `interruptChecks: false` leaves the interruption checks out (only `nuvola bench preempt` does,
 * to measure them). `fuel: true` adds the fuel counter ({@link EXPORT_FUEL}); without it the
 * code carries none.
 */
export function prepareModule(bytes: Uint8Array, options: { interruptChecks?: boolean; fuel?: boolean } = {}): PreparedModule {
  const checks = options.interruptChecks !== false;
  const fuel = options.fuel === true;
  const entries: Entry[] = [];
  let pos = 8;
  while (pos < bytes.length) {
    const id = bytes[pos]!;
    const size = readLeb(bytes, pos + 1);
    const end = size.next + size.value;
    if (end > bytes.length) throw new SnapshotUnsupported(`section ${id} runs past the end of the module`);
    entries.push({ id, payload: bytes.subarray(size.next, end) });
    pos = end;
  }
  const find = (id: number): Entry | undefined => entries.find((e) => e.id === id);

  // Types: parameter counts, and room for the mark helper's type.
  const paramCounts: number[] = [];
  const typeEntry = find(Section.Type);
  if (typeEntry) {
    const c = newCursor(typeEntry.payload);
    for (let n = c.leb(); n > 0; n--) {
      if (c.byte() !== 0x60) throw new SnapshotUnsupported('type section holds a non-function type (GC types)');
      const params = c.leb();
      for (let k = 0; k < params; k++) valType(c);
      for (let k = c.leb(); k > 0; k--) valType(c);
      paramCounts.push(params);
    }
  }
  // Two types are appended: (i32, i32) -> () for the mark helper and load, (i32) -> () for save.
  const pairType = paramCounts.length;
  const singleType = pairType + 1;

  // Imports: count the functions; nothing but functions is expected (module-check). Note
  // which are region accessors (every nuvola:region import but map and grow).
  let functionImports = 0;
  let regionImports = 0;
  const accessors = new Map<number, string>();
  const importEntry = find(Section.Import);
  if (importEntry) {
    const c = newCursor(importEntry.payload);
    for (let n = c.leb(); n > 0; n--) {
      const module = c.text();
      const name = c.text();
      const kind = c.byte();
      if (kind !== 0) throw new SnapshotUnsupported('imports other than functions');
      c.leb();
      if (module === REGION_MODULE) {
        regionImports++;
        if (!REGION_HOST_CALLS.includes(name)) accessors.set(functionImports, name);
      }
      functionImports++;
    }
  }
  const regions = regionImports > 0;

  const memoryEntry = find(Section.Memory);
  if (!memoryEntry) throw new SnapshotUnsupported('no memory section');
  const memoryCursor = newCursor(memoryEntry.payload);
  if (memoryCursor.leb() !== 1) throw new SnapshotUnsupported('more than one memory');
  const memory = memoryCursor.limits();
  if (memory.maximum === undefined) throw new SnapshotUnsupported('memory without a maximum (not capped)');

  // Functions: the defined functions' types.
  const functionTypes: number[] = [];
  const functionEntry = find(Section.Function);
  if (functionEntry) {
    const c = newCursor(functionEntry.payload);
    for (let n = c.leb(); n > 0; n--) functionTypes.push(c.leb());
  }
  const firstAdded = functionImports + functionTypes.length;

  // Globals: which are mutable, and room for the dirty-map base.
  const globalTypes: SnapshotLayout['globalTypes'] = [];
  const mutableIndices: number[] = [];
  const globalEntry = find(Section.Global);
  let globalCount = 0;
  if (globalEntry) {
    const c = newCursor(globalEntry.payload);
    globalCount = c.leb();
    for (let g = 0; g < globalCount; g++) {
      const type = c.byte();
      if (type === 0x63 || type === 0x64) throw new SnapshotUnsupported('typed-reference globals');
      const mutable = c.byte() === 1;
      c.constExpr();
      if (!mutable) continue;
      const numeric = NUMERIC[type];
      if (numeric === undefined) {
        throw new SnapshotUnsupported(`a mutable global of type 0x${type.toString(16)} (only i32, i64, f32, f64 can be snapshotted)`);
      }
      globalTypes.push(numeric);
      mutableIndices.push(g);
    }
  }
  const baseGlobal = globalCount;
  const armedGlobal = globalCount + 1;
  const fuelGlobal = fuel ? globalCount + 2 : undefined;

  // Start: removed, its function exported.
  const startEntry = find(Section.Start);
  const startFunction = startEntry ? newCursor(startEntry.payload).leb() : undefined;

  // Code: instrumented when every body can be followed.
  let code: Uint8Array | undefined;
  let resetNote: string | undefined;
  let untracked = 'no code section';
  let bodyMaps: BodyMap[] = [];
  const codeEntry = find(Section.Code);
  if (codeEntry) {
    const layout: CodeLayout = { paramCounts, functionTypes, baseGlobal, markFunction: firstAdded, armedGlobal, checks, functionImports };
    if (fuelGlobal !== undefined) layout.fuelGlobal = fuelGlobal;
    if (regions) layout.regions = { accessors, table: regionTableOffset(memory.maximum) };
    try {
      const maps: BodyMap[] = [];
      code = instrumentCode(codeEntry.payload, layout, maps);
      bodyMaps = maps;
    } catch (err) {
      if (!(err instanceof Uninstrumentable)) throw err;
      untracked = err.message;
      resetNote = `its code uses ${err.message}, which nuvola does not track; each call gets a fresh instance instead of a reset`;
    }
  }
  const tracked = code !== undefined;
  // Region accessors exist only as the code the walk puts in their place.
  if (regions && !tracked) {
    throw new SnapshotUnsupported(
      `nuvola:region, whose accessors nuvola compiles into the code, but its code uses ${untracked}, which the rewrite cannot follow`,
    );
  }

  // Data: active segments become passive; their bytes go to the boot instance.
  const dataSegments: DataSegment[] = [];
  let data: Uint8Array | undefined;
  const dataEntry = find(Section.Data);
  if (dataEntry) {
    const c = newCursor(dataEntry.payload);
    const out = new Writer();
    const count = c.leb();
    out.leb(count);
    for (let n = 0; n < count; n++) {
      const flag = c.leb();
      if (flag === 1) {
        const len = c.leb();
        out.byte(1);
        out.leb(len);
        out.bytes(c.bytes.subarray(c.pos, c.pos + len));
        c.skip(len);
        continue;
      }
      if (flag !== 0 && flag !== 2) throw new SnapshotUnsupported(`data segment kind ${flag}`);
      if (flag === 2 && c.leb() !== 0) throw new SnapshotUnsupported('a data segment for a memory other than 0');
      const offset = c.constExpr();
      if (offset === undefined) throw new SnapshotUnsupported('a data segment whose offset is not an i32.const');
      const len = c.leb();
      const segment = c.bytes.subarray(c.pos, c.pos + len);
      if (segment.length !== len) throw new SnapshotUnsupported('truncated data segment');
      c.skip(len);
      dataSegments.push({ offset: offset >>> 0, bytes: segment.slice() });
      out.byte(1);
      out.leb(len);
      out.bytes(segment);
    }
    data = out.result();
  }

  // Assemble. Appended functions: [mark, if tracked] load, save, arm.
  const types = globalTypes.map((t) => GLOBAL_OPS[t]);
  const armBody = [0, 0x20, 0x00, 0x24, ...writeLeb(armedGlobal), 0x0b];
  const globalsCode = [
    ...withSize(loadBody(mutableIndices, types, baseGlobal)),
    ...withSize(saveBody(mutableIndices, types)),
    ...withSize(armBody),
  ];
  const loadFunction = firstAdded + (tracked ? 1 : 0);
  const replace = new Map<number, Uint8Array | null>();
  replace.set(Section.Memory, null);
  replace.set(Section.Start, null);
  replace.set(Section.Code, appendToVector(tracked ? code : codeEntry?.payload, globalsCode, 3));
  replace.set(
    Section.Function,
    appendToVector(
      functionEntry?.payload,
      tracked ? [pairType, pairType, singleType, singleType] : [pairType, singleType, singleType],
      tracked ? 4 : 3,
    ),
  );
  replace.set(Section.Type, appendToVector(typeEntry?.payload, [0x60, 2, 0x7f, 0x7f, 0, 0x60, 1, 0x7f, 0], 2));
  if (data) replace.set(Section.Data, data);

  const memoryLimits = [0x01, ...writeLeb(memory.initial), ...writeLeb(memory.maximum)];
  replace.set(
    Section.Import,
    appendToVector(
      importEntry?.payload,
      [
        ...nameBytes(SNAPSHOT_MODULE),
        ...nameBytes(IMPORT_MEMORY),
        0x02,
        ...memoryLimits,
        ...nameBytes(SNAPSHOT_MODULE),
        ...nameBytes(IMPORT_DIRTY),
        0x02,
        0x00,
        0x00,
        // One shared page, exactly.
        ...nameBytes(SNAPSHOT_MODULE),
        ...nameBytes(IMPORT_INTERRUPT),
        0x02,
        0x03,
        0x01,
        0x01,
        // With regions: the host's region memory, shared, of any size up to 4 GiB.
        ...(regions ? [...nameBytes(SNAPSHOT_MODULE), ...nameBytes(IMPORT_REGION), 0x02, 0x03, 0x00, 0x80, 0x80, 0x04] : []),
      ],
      regions ? 4 : 3,
    ),
  );
  // The dirty-map base, then the armed call id (0: none; the interrupt word never holds 0).
  // With fuel, a mutable i64 starting at the i64 maximum (start-up code is not counted).
  const fuelInit = [0x7e, 0x01, 0x42, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00, 0x0b];
  replace.set(
    Section.Global,
    appendToVector(
      globalEntry?.payload,
      [0x7f, 0x01, 0x41, 0x00, 0x0b, 0x7f, 0x01, 0x41, 0x00, 0x0b, ...(fuel ? fuelInit : [])],
      fuel ? 3 : 2,
    ),
  );

  const exportEntry = find(Section.Export);
  const added: number[][] = [
    [...nameBytes(EXPORT_LOAD), 0x00, ...writeLeb(loadFunction)],
    [...nameBytes(EXPORT_SAVE), 0x00, ...writeLeb(loadFunction + 1)],
    [...nameBytes(EXPORT_ARM), 0x00, ...writeLeb(loadFunction + 2)],
  ];
  if (startFunction !== undefined) added.push([...nameBytes(EXPORT_START_SECTION), 0x00, ...writeLeb(startFunction)]);
  if (fuelGlobal !== undefined) added.push([...nameBytes(EXPORT_FUEL), 0x03, ...writeLeb(fuelGlobal)]);
  replace.set(Section.Export, appendToVector(exportEntry?.payload, added.flat(), added.length));

  const out = new Writer();
  out.bytes(bytes.subarray(0, 8));
  const present = new Set(entries.map((e) => e.id));
  const pendingNew = [...replace.entries()].filter(([id, payload]) => payload !== null && !present.has(id)).map(([id]) => id);
  const emit = (id: number, payload: Uint8Array): void => {
    out.byte(id);
    out.leb(payload.length);
    out.bytes(payload);
  };
  for (const entry of entries) {
    if (entry.id !== Section.Custom) {
      for (const id of [...pendingNew]) {
        if (ORDER[id]! < ORDER[entry.id]!) {
          emit(id, replace.get(id)!);
          pendingNew.splice(pendingNew.indexOf(id), 1);
        }
      }
    }
    const replacement = replace.get(entry.id);
    if (entry.id === Section.Custom || replacement === undefined) emit(entry.id, entry.payload);
    else if (replacement !== null) emit(entry.id, replacement);
  }
  for (const id of pendingNew.sort((a, b) => ORDER[a]! - ORDER[b]!)) emit(id, replace.get(id)!);

  return {
    bytes: out.result(),
    layout: {
      globalTypes,
      hasStart: startFunction !== undefined,
      initialPages: memory.initial,
      maximumPages: memory.maximum,
      tracked,
      resetNote,
      interruptible: tracked && checks,
      fuel: tracked && fuel,
      regions,
    },
    dataSegments,
    bodyMaps,
  };
}

/** Load and store opcodes (memory 1, 8 bytes per global) by global type. */
const GLOBAL_OPS = {
  i32: { load: 0x28, store: 0x36 },
  i64: { load: 0x29, store: 0x37 },
  f32: { load: 0x2a, store: 0x38 },
  f64: { load: 0x2b, store: 0x39 },
} as const;

/** A memarg for memory 1 at `offset`, alignment hint 1 byte. */
function dirtyMemarg(offset: number): number[] {
  return [0x40, 0x01, ...writeLeb(offset)];
}

/**
 * `__nuvola_load(area, base)`: sets the dirty-map base global to `base` and every mutable
 * global from the 8-byte slots at `area` in memory 1 — how a restore and a reset set them.
 */
function loadBody(globals: number[], ops: { load: number }[], base: number): number[] {
  const out = [0, 0x20, 1, 0x24, ...writeLeb(base)];
  globals.forEach((g, k) => out.push(0x20, 0, ops[k]!.load, ...dirtyMemarg(8 * k), 0x24, ...writeLeb(g)));
  out.push(0x0b);
  return out;
}

/** `__nuvola_save(area)`: writes every mutable global to the 8-byte slots at `area` in memory 1. */
function saveBody(globals: number[], ops: { store: number }[]): number[] {
  const out = [0];
  globals.forEach((g, k) => out.push(0x20, 0, 0x23, ...writeLeb(g), ops[k]!.store, ...dirtyMemarg(8 * k)));
  out.push(0x0b);
  return out;
}

function withSize(body: number[]): number[] {
  return [...writeLeb(body.length), ...body];
}

/** A vector payload with `items` (already encoded) appended and its count raised by `count`. */
function appendToVector(payload: Uint8Array | undefined, items: ArrayLike<number>, count = 1): Uint8Array {
  const existing = payload ? readLeb(payload, 0) : { value: 0, next: 0 };
  const out = new Writer();
  out.leb(existing.value + count);
  if (payload) out.bytes(payload.subarray(existing.next));
  out.bytes(items);
  return out.result();
}

/** A value type; a typed reference is refused (the rewrite does not handle them). */
function valType(c: SectionReader): void {
  const t = c.byte();
  if (t === 0x63 || t === 0x64) throw new SnapshotUnsupported('typed function references');
}
