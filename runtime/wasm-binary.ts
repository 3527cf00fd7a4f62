/**
 * Just enough of the WebAssembly binary format to cap a module's memory: walk the sections
 * and rewrite the memory section's limits so the engine itself refuses to grow past them.
 * The walk runs before validation: it throws a RangeError on framing it cannot follow, and the
 * engine validates whatever it returns.
 */

const MEMORY_SECTION = 5;

interface Leb {
  value: number;
  next: number;
}

function readLeb(bytes: Uint8Array, offset: number): Leb {
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

function writeLeb(value: number): number[] {
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
