/**
 * Worker thread. Instantiating a WebAssembly component through the code jco generated for it
 * (runtime/component.ts transpiles on the main thread): the glue is compiled once per worker
 * and component, and every instance gets its own glue state, so no call sees another's.
 */
import type { ComponentCode } from '../protocol.js';

/** The world every component function exports (wit/nuvola-function.wit). */
export interface ComponentApi {
  run(input: Uint8Array): Uint8Array;
}

/** What the glue needs of a core instance: it reads only `exports`. */
type CoreInstance = { exports: WebAssembly.Exports };
type CoreInstantiate = (module: WebAssembly.Module, imports?: WebAssembly.Imports) => CoreInstance;
type Instantiate = (getCoreModule: (name: string) => WebAssembly.Module, imports: object, instantiateCore: CoreInstantiate) => ComponentApi;

const glues = new Map<string, Instantiate>();

/** jco's `instantiate` for this component, compiled on first use in this worker. */
export function glueFor(code: ComponentCode): Instantiate {
  let glue = glues.get(code.hash);
  if (glue === undefined) {
    // The glue is nuvola's own output of jco's transpiler (runtime/component.ts), not guest code.
    glue = new Function(code.glue)() as Instantiate;
    glues.set(code.hash, glue);
  }
  return glue;
}

/** Forgets compiled glue no registered function uses any more. */
export function dropGlue(hash: string): void {
  glues.delete(hash);
}

/** The interface name (without version) under which the glue expects nuvola's host imports. */
export const HOST_INTERFACE = 'nuvola:function/host';

/**
 * Instantiates a component. `main` is the core module that owns the memory (rewritten for
 * snapshots); `instantiateMain` instantiates it, so that the caller adds its own imports and
 * sees its exports before any code of the component runs. `written(ptr, length)` is told of
 * every range a possible `realloc` hands out (see {@link markingReallocs}).
 */
export function instantiateComponent(
  code: ComponentCode,
  main: WebAssembly.Module,
  hostImports: { log: (message: string) => void },
  instantiateMain: (module: WebAssembly.Module, imports: WebAssembly.Imports) => WebAssembly.Instance,
  written: (ptr: number, length: number) => void,
): ComponentApi {
  const moduleNamed = (name: string): WebAssembly.Module | undefined => (name === code.main ? main : code.modules[name]);
  const reallocs = new Map<WebAssembly.Module, string[]>();
  for (const [name, exports] of Object.entries(code.reallocs)) {
    const module = moduleNamed(name);
    if (module !== undefined) reallocs.set(module, exports);
  }
  const getCoreModule = (name: string): WebAssembly.Module => {
    const module = moduleNamed(name);
    if (module === undefined) throw new Error(`the component's glue asked for a core module '${name}' it does not contain`);
    return module;
  };
  const instantiateCore: CoreInstantiate = (module, imports = {}) => {
    const instance = module === main ? instantiateMain(module, imports) : new WebAssembly.Instance(module, imports);
    const names = reallocs.get(module);
    return names === undefined ? instance : { exports: markingReallocs(instance.exports, names, written) };
  };
  return glueFor(code)(getCoreModule, { [HOST_INTERFACE]: hostImports }, instantiateCore);
}

/**
 * The glue copies a call's input into guest memory from JavaScript, into the range the
 * component's `realloc` returned: no instrumented store marks it. So every export that could
 * be that `realloc` is handed to the glue wrapped, marking `[returned, returned + new size)`
 * before the glue writes there, and a reset restores it. In nuvola's function world that is
 * everything the glue writes into guest memory (its one import, `log`, returns nothing); an
 * export of the same type that is not a `realloc` only gets blocks marked that need not be.
 */
function markingReallocs(
  exports: WebAssembly.Exports,
  names: string[],
  written: (ptr: number, length: number) => void,
): WebAssembly.Exports {
  const wrapped: WebAssembly.Exports = { ...exports };
  for (const name of names) {
    const realloc = exports[name];
    if (typeof realloc !== 'function') continue;
    wrapped[name] = (old: number, oldSize: number, align: number, size: number): number => {
      const ptr = (realloc as (a: number, b: number, c: number, d: number) => number)(old, oldSize, align, size);
      written(ptr >>> 0, size >>> 0);
      return ptr;
    };
  }
  return wrapped;
}

/**
 * The message of a `result`'s error case (the component returned `err(message)`), which the
 * glue throws: as the string itself, or wrapped in jco's ComponentError by older versions.
 */
export function componentErrorMessage(err: unknown): string | undefined {
  if (typeof err === 'string') return err;
  if (err instanceof Error && err.constructor.name === 'ComponentError' && 'payload' in err) return String(err.payload);
  return undefined;
}
