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
import { SectionReader } from './section-reader.js';

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
      const r = new SectionReader(bytes.subarray(size.next, end), (why) => new Unreadable(why));
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
