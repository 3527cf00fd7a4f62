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

type CoreInstantiate = (module: WebAssembly.Module, imports?: WebAssembly.Imports) => WebAssembly.Instance;
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
 * sees its exports before any code of the component runs.
 */
export function instantiateComponent(
  code: ComponentCode,
  main: WebAssembly.Module,
  hostImports: { log: (message: string) => void },
  instantiateMain: (module: WebAssembly.Module, imports: WebAssembly.Imports) => WebAssembly.Instance,
): ComponentApi {
  const getCoreModule = (name: string): WebAssembly.Module => {
    if (name === code.main) return main;
    const module = code.modules[name];
    if (module === undefined) throw new Error(`the component's glue asked for a core module '${name}' it does not contain`);
    return module;
  };
  const instantiateCore: CoreInstantiate = (module, imports = {}) =>
    module === main ? instantiateMain(module, imports) : new WebAssembly.Instance(module, imports);
  return glueFor(code)(getCoreModule, { [HOST_INTERFACE]: hostImports }, instantiateCore);
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
