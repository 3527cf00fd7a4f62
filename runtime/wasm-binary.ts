/**
 * Just enough of the WebAssembly binary format to cap a module's memory: walk the sections
 * and rewrite the memory section's limits so the engine itself refuses to grow past them.
 * The walk runs before validation: it throws a RangeError on framing it cannot follow, and the
 * engine validates whatever it returns.
 */

const MEMORY_SECTION = 5;

export interface Leb {
  value: number;
  next: number;
}

export function readLeb(bytes: Uint8Array, offset: number): Leb {
  let value = 0;
  let shift = 0;
  let pos = offset;
  for (;;) {
    const byte = bytes[pos++];
    if (byte === undefined) throw new RangeError('truncated LEB128');
    value += (byte & 0x7f) * 2 ** shift;
    if ((byte & 0x80) === 0) return { value, next: pos };
    shift += 7;
  }
}

export function writeLeb(value: number): number[] {
  const out: number[] = [];
  let v = value;
  do {
    let byte = v % 128;
    v = Math.floor(v / 128);
    if (v !== 0) byte |= 0x80;
    out.push(byte);
  } while (v !== 0);
  return out;
}

/** The limits of the one memory a module defines, or `undefined` when it defines none. */
export interface MemoryLimits {
  initialPages: number;
  maximumPages: number | undefined;
  shared: boolean;
  memory64: boolean;
}

/**
 * Returns the module with its defined memory's maximum set to `min(declared, limitPages)`,
 * and the limits as declared. Only a module that defines exactly one memory is rewritten.
 */
export function capMemory(bytes: Uint8Array, limitPages: number): { bytes: Uint8Array; declared: MemoryLimits | undefined } {
  let pos = 8;
  while (pos < bytes.length) {
    const id = bytes[pos] as number;
    const size = readLeb(bytes, pos + 1);
    const start = size.next;
    const end = start + size.value;
    if (end > bytes.length) throw new RangeError(`section ${id} runs past the end of the module`);
    if (id === MEMORY_SECTION) {
      const count = readLeb(bytes, start);
      if (count.value !== 1) return { bytes, declared: undefined };
      const flags = bytes[count.next] as number;
      const initial = readLeb(bytes, count.next + 1);
      const hasMax = (flags & 1) !== 0;
      const max = hasMax ? readLeb(bytes, initial.next) : undefined;
      const declared: MemoryLimits = {
        initialPages: initial.value,
        maximumPages: max?.value,
        shared: (flags & 2) !== 0,
        memory64: (flags & 4) !== 0,
      };
      if (declared.memory64) return { bytes, declared };
      const cap = Math.min(limitPages, declared.maximumPages ?? limitPages);
      const body = [...writeLeb(1), flags | 1, ...writeLeb(initial.value), ...writeLeb(cap)];
      const section = [MEMORY_SECTION, ...writeLeb(body.length), ...body];
      const out = new Uint8Array(pos + section.length + (bytes.length - end));
      out.set(bytes.subarray(0, pos), 0);
      out.set(section, pos);
      out.set(bytes.subarray(end), pos + section.length);
      return { bytes: out, declared };
    }
    pos = end;
  }
  return { bytes, declared: undefined };
}

const TYPE_SECTION = 1;
const IMPORT_SECTION = 2;
const FUNCTION_SECTION = 3;
const EXPORT_SECTION = 7;

const VALTYPES: Record<number, string> = {
  0x7f: 'i32',
  0x7e: 'i64',
  0x7d: 'f32',
  0x7c: 'f64',
  0x7b: 'v128',
  0x70: 'funcref',
  0x6f: 'externref',
};

/** A function type as `(params) -> (results)`, e.g. `() -> (i32)`. */
export interface Signature {
  params: string[];
  results: string[];
}

export function formatSignature(sig: Signature): string {
  return `(${sig.params.join(', ')}) -> (${sig.results.join(', ')})`;
}

class Reader {
  pos: number;
  constructor(
    private readonly bytes: Uint8Array,
    start: number,
  ) {
    this.pos = start;
  }
  byte(): number {
    const b = this.bytes[this.pos++];
    if (b === undefined) throw new RangeError('truncated section');
    return b;
  }
  leb(): number {
    const { value, next } = readLeb(this.bytes, this.pos);
    this.pos = next;
    return value;
  }
  name(): string {
    const length = this.leb();
    const text = new TextDecoder().decode(this.bytes.subarray(this.pos, this.pos + length));
    this.pos += length;
    return text;
  }
  limits(): void {
    const flags = this.byte();
    this.leb();
    if (flags & 1) this.leb();
  }
}

/**
 * The signatures of a module's exported functions, or `undefined` when the module uses type
 * forms this reader does not know (GC types, for instance); callers then skip the check.
 */
export function exportSignatures(bytes: Uint8Array): Map<string, Signature> | undefined {
  return functionSignatures(bytes)?.exports;
}

/**
 * The signature of every imported function (`module.name`, in import order) and exported function (by name),
 * or undefined when the sections cannot be read (the engine has validated the module by then).
 */
export function functionSignatures(bytes: Uint8Array): { imports: [string, Signature][]; exports: Map<string, Signature> } | undefined {
  const types: Signature[] = [];
  const functionTypes: number[] = [];
  const importTypes: [string, number][] = [];
  const exports = new Map<string, number>();
  try {
    let pos = 8;
    while (pos < bytes.length) {
      const id = bytes[pos] as number;
      const size = readLeb(bytes, pos + 1);
      const r = new Reader(bytes, size.next);
      const end = size.next + size.value;
      if (id === TYPE_SECTION) {
        for (let n = r.leb(); n > 0; n--) {
          if (r.byte() !== 0x60) return undefined;
          const valtypes = (): string[] => {
            const out: string[] = [];
            for (let k = r.leb(); k > 0; k--) {
              const name = VALTYPES[r.byte()];
              if (name === undefined) throw new RangeError('unknown value type');
              out.push(name);
            }
            return out;
          };
          const params = valtypes();
          types.push({ params, results: valtypes() });
        }
      } else if (id === IMPORT_SECTION) {
        for (let n = r.leb(); n > 0; n--) {
          const module = r.name();
          const name = r.name();
          const kind = r.byte();
          if (kind === 0) {
            const typeIndex = r.leb();
            importTypes.push([`${module}.${name}`, typeIndex]);
            functionTypes.push(typeIndex);
          } else if (kind === 1) {
            r.byte();
            r.limits();
          } else if (kind === 2) r.limits();
          else if (kind === 3) {
            r.byte();
            r.byte();
          } else if (kind === 4) {
            r.byte();
            r.leb();
          } else return undefined;
        }
      } else if (id === FUNCTION_SECTION) {
        for (let n = r.leb(); n > 0; n--) functionTypes.push(r.leb());
      } else if (id === EXPORT_SECTION) {
        for (let n = r.leb(); n > 0; n--) {
          const name = r.name();
          const kind = r.byte();
          const index = r.leb();
          if (kind === 0) exports.set(name, index);
        }
      }
      pos = end;
    }
  } catch {
    return undefined;
  }
  const exported = new Map<string, Signature>();
  for (const [name, index] of exports) {
    const typeIndex = functionTypes[index];
    const type = typeIndex === undefined ? undefined : types[typeIndex];
    if (type === undefined) return undefined;
    exported.set(name, type);
  }
  const imported: [string, Signature][] = [];
  for (const [name, typeIndex] of importTypes) {
    const type = types[typeIndex];
    if (type === undefined) return undefined;
    imported.push([name, type]);
  }
  return { imports: imported, exports: exported };
}
