/**
 * Main thread. What a component's other core modules (all but the one that owns the memory)
 * keep from one call to the next. Only the memory-owning module is rewritten for snapshots:
 * its memory and globals are reset after each call. Another module is left as jco's glue
 * instantiated it, which is sound only when it holds nothing a call can change — jco's own
 * shim and fixup modules (a table filled once at instantiation, functions that call through
 * it) hold nothing. A module that holds something gets, with its whole component, a fresh
 * instance for every call instead of a reset.
 */
import { readLeb } from '../wasm-binary.js';
import { instrumentCode, Uninstrumentable } from './code.js';

export interface CoreModuleState {
  /** Whether the module defines a memory of its own (a component may have only one). */
  definesMemory: boolean;
  /**
   * Why the module keeps state across calls that a reset does not put back, in words that
   * follow "the core module X"; undefined when it keeps none.
   */
  kept: string | undefined;
}

const enum Section {
  Type = 1,
  Import = 2,
  Function = 3,
  Memory = 5,
  Global = 6,
  Code = 10,
}

class Unreadable extends Error {}

/** What `bytes`, a core module of a component other than the memory-owning one, keeps between calls. */
export function coreModuleState(bytes: Uint8Array): CoreModuleState {
  let definesMemory = false;
  let kept: string | undefined;
  const keep = (why: string): void => {
    kept ??= why;
  };
  const paramCounts: number[] = [];
  const functionTypes: number[] = [];
  try {
    let pos = 8;
    while (pos < bytes.length) {
      const id = bytes[pos]!;
      const size = readLeb(bytes, pos + 1);
      const end = size.next + size.value;
      if (end > bytes.length) throw new Unreadable('a section runs past the end of the module');
      const r = new Reader(bytes.subarray(size.next, end));
      if (id === Section.Type) {
        for (let n = r.leb(); n > 0; n--) {
          if (r.byte() !== 0x60) throw new Unreadable('GC types');
          const params = r.leb();
          for (let k = 0; k < params; k++) r.valType();
          for (let k = r.leb(); k > 0; k--) r.valType();
          paramCounts.push(params);
        }
      } else if (id === Section.Import) {
        for (let n = r.leb(); n > 0; n--) {
          r.skip(r.leb());
          r.skip(r.leb());
          const kind = r.byte();
          if (kind === 0) {
            r.leb();
          } else if (kind === 1) {
            r.valType();
            r.limits();
          } else if (kind === 2) {
            r.limits();
            keep('imports a memory and writes to it are not tracked');
          } else if (kind === 3) {
            r.valType();
            if (r.byte() === 1) keep('imports a mutable global');
          } else if (kind === 4) {
            r.byte();
            r.leb();
          } else {
            throw new Unreadable(`an import of kind ${kind}`);
          }
        }
      } else if (id === Section.Function) {
        for (let n = r.leb(); n > 0; n--) functionTypes.push(r.leb());
      } else if (id === Section.Memory) {
        if (r.leb() > 0) {
          definesMemory = true;
          keep('defines a memory of its own');
        }
      } else if (id === Section.Global) {
        for (let n = r.leb(); n > 0; n--) {
          r.valType();
          if (r.byte() === 1) keep('keeps a mutable global');
          r.constExpr();
        }
      } else if (id === Section.Code) {
        try {
          // The walk refuses what changes tables or segments at run time (and what it cannot
          // decode); a module without a memory has no stores for it to mark.
          instrumentCode(r.bytes, { paramCounts, functionTypes, baseGlobal: 0, markFunction: 0, armedGlobal: 0 });
        } catch (err) {
          if (!(err instanceof Uninstrumentable)) throw err;
          keep(`uses ${err.message} in its code`);
        }
      }
      pos = end;
    }
  } catch (err) {
    if (!(err instanceof Unreadable || err instanceof RangeError)) throw err;
    keep(`uses what nuvola cannot read (${err.message})`);
  }
  return { definesMemory, kept };
}

class Reader {
  private pos = 0;
  constructor(readonly bytes: Uint8Array) {}
  byte(): number {
    const b = this.bytes[this.pos++];
    if (b === undefined) throw new Unreadable('a truncated section');
    return b;
  }
  leb(): number {
    const r = readLeb(this.bytes, this.pos);
    this.pos = r.next;
    return r.value;
  }
  skip(n: number): void {
    this.pos += n;
  }
  /** A value or reference type: one byte, or a typed reference (0x63/0x64 and a heap type). */
  valType(): void {
    const t = this.byte();
    if (t === 0x63 || t === 0x64) this.sleb();
  }
  sleb(): void {
    while ((this.byte() & 0x80) !== 0);
  }
  limits(): void {
    const flags = this.byte();
    this.leb();
    if (flags & 1) this.leb();
  }
  /** Skips a constant expression up to and including its `end`. */
  constExpr(): void {
    for (;;) {
      const op = this.byte();
      if (op === 0x0b) return;
      if (op === 0x41 || op === 0x42 || op === 0x23 || op === 0xd2 || op === 0xd0) this.sleb();
      else if (op === 0x43) this.skip(4);
      else if (op === 0x44) this.skip(8);
      else if (op === 0xfd) {
        const sub = this.leb();
        if (sub !== 12) throw new Unreadable(`constant expression opcode 0xfd ${sub}`);
        this.skip(16);
      } else if (![0x6a, 0x6b, 0x6c, 0x7c, 0x7d, 0x7e].includes(op)) {
        throw new Unreadable(`constant expression opcode 0x${op.toString(16)}`);
      }
    }
  }
}
