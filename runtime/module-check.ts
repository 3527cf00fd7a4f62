/**
 * Main thread. Turns bytes from `register` into a compiled, checked `WebAssembly.Module`:
 * the bytes must be Wasm, every import must be one the host provides (nuvola's ABI or WASI
 * preview 1), the entry point (`main`, or `_start` for a WASI command) and `memory` must be
 * exported, and the memory is capped at `memoryLimitPages`.
 */
import * as abi from '../guest/sdk/nuvola/abi.js';
import { ErrorCode, ModuleError, LimitError } from './errors.js';
import { capMemory, formatSignature, functionSignatures } from './wasm-binary.js';
import { IMPORT_SIGNATURES, PROVIDED_IMPORTS, SUSPENDING_IMPORTS, WASI_START } from './capabilities/registry.js';
import { prepareModule, SnapshotUnsupported } from './snapshot/rewrite.js';
import { dropCustomSection, SOURCE_MAP_SECTION, sourceTable, type SourceTable } from './source-map.js';
import type { DataSegment, SnapshotLayout } from './snapshot/layout.js';
import type { GuestAbi } from './protocol.js';

const WASM_MAGIC = [0x00, 0x61, 0x73, 0x6d];
/** Exports the snapshot rewrite adds (`__nuvola_load`, `__nuvola_arm`, `__nuvola_fuel`, ...) start with this. */
const RESERVED_EXPORT_PREFIX = '__nuvola_';

export interface CheckedModule {
  /** The module rewritten for snapshots (runtime/snapshot/rewrite.ts), compiled. */
  module: WebAssembly.Module;
  layout: SnapshotLayout;
  /** The original's active data segments, for the one instance that boots. */
  segments: DataSegment[];
  /** Whether the module imports a host function that may suspend (then `main` runs through JSPI). */
  suspends: boolean;
  /** The interface it speaks (detected when registered with `abi: 'auto'`). */
  abi: GuestAbi;
  /** Source positions by offset in the rewritten module, when the module carries a source map (`nuvola build`). */
  sources: SourceTable | undefined;
}

/** Whether the bytes are a WebAssembly component (layer 1) rather than a core module. */
export function isComponent(bytes: Uint8Array): boolean {
  return WASM_MAGIC.every((b, i) => bytes[i] === b) && bytes[6] === 0x01 && bytes[7] === 0x00 && bytes[4] !== 0x01;
}

/**
 * `abi`: what the registration asked for. `'component-core'` is the core module of a
 * component that jco's glue instantiates: its imports and exports are the glue's business.
 */
export async function checkModule(
  name: string,
  input: Uint8Array,
  memoryLimitPages: number,
  requested: 'auto' | 'nuvola' | 'wasi' | 'component-core' = 'auto',
  rewrite: { interruptChecks?: boolean; fuel?: boolean } = {},
): Promise<CheckedModule> {
  const original = input as Uint8Array<ArrayBuffer>;
  const looksLikeWasm = WASM_MAGIC.every((b, i) => original[i] === b);
  if (!looksLikeWasm) {
    throw new ModuleError(
      ErrorCode.INVALID_MODULE,
      `function '${name}': the bytes are not a WebAssembly module (no \\0asm header); build guests with \`npx nuvola build f.ts -o f.wasm\``,
      { function: name },
    );
  }
  const malformed = (reason: string): ModuleError =>
    new ModuleError(ErrorCode.INVALID_MODULE, `function '${name}': malformed WebAssembly module: ${reason}`, {
      function: name,
      reason,
    });
  let capped: ReturnType<typeof capMemory>;
  try {
    capped = capMemory(original, memoryLimitPages);
  } catch (err) {
    throw malformed((err as Error).message);
  }
  const { bytes, declared } = capped;
  // Before compiling: the engine itself rejects a cap below the initial size, less helpfully.
  if (declared !== undefined && declared.initialPages > memoryLimitPages) {
    throw new LimitError(
      ErrorCode.MEMORY_LIMIT,
      `function '${name}' starts with ${declared.initialPages} pages of memory, above memoryLimitPages=${memoryLimitPages}; raise memoryLimitPages in register()`,
      { function: name, initialPages: declared.initialPages, memoryLimitPages },
    );
  }
  let module: WebAssembly.Module;
  try {
    // Asynchronous compilation keeps a large module from stalling the embedding service's
    // event loop; it also validates (the rewrite above only touched the memory limits).
    module = await WebAssembly.compile(bytes as Uint8Array<ArrayBuffer>);
  } catch (err) {
    throw malformed((err as Error).message);
  }
  if (declared === undefined || declared.memory64 || declared.shared) {
    throw new ModuleError(ErrorCode.INVALID_MODULE, `function '${name}' must define exactly one unshared 32-bit memory`, {
      function: name,
    });
  }

  const exports = new Map(WebAssembly.Module.exports(module).map((e) => [e.name, e.kind]));
  let abiName: GuestAbi;
  if (requested === 'component-core') abiName = 'component';
  else if (requested === 'auto') abiName = exports.get(WASI_START) === 'function' && !exports.has(abi.EXPORT_MAIN) ? 'wasi' : 'nuvola';
  else abiName = requested;
  if (abiName !== 'component') checkInterface(name, module, bytes, exports, abiName);

  // The rewrite adds exports of its own (snapshot/layout.ts): a guest's export of such a name
  // would collide with them.
  const reserved = [...exports.keys()].find((e) => e.startsWith(RESERVED_EXPORT_PREFIX));
  if (reserved !== undefined) {
    throw new ModuleError(
      ErrorCode.INVALID_MODULE,
      `function '${name}' exports '${reserved}', a name nuvola reserves (exports starting with '${RESERVED_EXPORT_PREFIX}' are added by its rewrite); rename that export`,
      { function: name, export: reserved },
    );
  }

  const suspends = WebAssembly.Module.imports(module).some((i) => SUSPENDING_IMPORTS.has(`${i.module}.${i.name}`));
  let prepared: ReturnType<typeof prepareModule>;
  try {
    prepared = prepareModule(bytes, rewrite);
  } catch (err) {
    if (!(err instanceof SnapshotUnsupported)) throw err;
    throw new ModuleError(ErrorCode.INVALID_MODULE, `function '${name}' cannot be snapshotted: it uses ${err.message}`, {
      function: name,
      reason: err.message,
    });
  }
  // The source map is read from the original; the engine need not keep a copy.
  const final = dropCustomSection(prepared.bytes, SOURCE_MAP_SECTION);
  let rewritten: WebAssembly.Module;
  try {
    rewritten = await WebAssembly.compile(final as Uint8Array<ArrayBuffer>);
  } catch (err) {
    // The original compiled, so this is nuvola's own fault.
    throw new ModuleError(
      ErrorCode.INVALID_MODULE,
      `function '${name}': nuvola's snapshot rewrite produced an invalid module (${(err as Error).message}); please report this with the module attached`,
      { function: name, reason: (err as Error).message },
    );
  }
  return {
    module: rewritten,
    layout: prepared.layout,
    segments: prepared.dataSegments,
    suspends,
    abi: abiName,
    sources: sourceTable(original, final, prepared.bodyMaps),
  };
}

/** Checks a core module's imports and entry point against the ABI it speaks. */
function checkInterface(
  name: string,
  module: WebAssembly.Module,
  bytes: Uint8Array,
  exports: Map<string, string>,
  abiName: 'nuvola' | 'wasi',
): void {
  const unknown = WebAssembly.Module.imports(module)
    .filter((i) => PROVIDED_IMPORTS[i.module]?.[i.name] !== i.kind)
    .map((i) => `${i.module}.${i.name} (${i.kind})`);
  if (unknown.length > 0) {
    throw new ModuleError(
      ErrorCode.UNKNOWN_IMPORT,
      `function '${name}' imports what the nuvola ABI v${abi.ABI_VERSION} does not provide: ${unknown.join(', ')}. ` +
        'Import host capabilities only through the "nuvola" guest SDK, or WASI preview 1 (wasi_snapshot_preview1).',
      { function: name, imports: unknown },
    );
  }

  // The engine links an import of any type and fails (or worse, misreads an argument) at the
  // first call; the ABI says each function's signature, so a wrong one is refused here.
  const signatures = functionSignatures(bytes);
  const mistyped = (signatures?.imports ?? [])
    .filter(([importName, sig]) => formatSignature(sig) !== IMPORT_SIGNATURES.get(importName))
    .map(([importName, sig]) => `${importName} as ${formatSignature(sig)} (the host provides ${IMPORT_SIGNATURES.get(importName)})`);
  if (mistyped.length > 0) {
    throw new ModuleError(
      ErrorCode.INVALID_MODULE,
      `function '${name}' imports host functions with the wrong signature: ${mistyped.slice(0, 4).join(', ')}` +
        `${mistyped.length > 4 ? ` and ${mistyped.length - 4} more` : ''}. ` +
        'Declare them as the "nuvola" guest SDK does (guest/sdk/nuvola/), or rebuild against the current SDK.',
      { function: name, imports: mistyped },
    );
  }

  const entry = abiName === 'wasi' ? WASI_START : abi.EXPORT_MAIN;
  for (const [exportName, kind] of [
    [entry, 'function'],
    [abi.EXPORT_MEMORY, 'memory'],
  ] as const) {
    if (exports.get(exportName) !== kind) {
      const hint =
        exportName === abi.EXPORT_MAIN
          ? " (write `export function main(): i32` in the guest's entry file, or register a WASI command, which exports `_start`, with abi: 'wasi')"
          : exportName === WASI_START
            ? ' (a WASI command exports `_start`: build it as a command, not a reactor library)'
            : '';
      throw new ModuleError(ErrorCode.MISSING_EXPORT, `function '${name}' must export a ${kind} named '${exportName}'${hint}`, {
        function: name,
        export: exportName,
      });
    }
  }

  // The engine would accept any `main` and fail at the first call; say so at register instead.
  const expectations: [string, string][] =
    abiName === 'wasi'
      ? [[WASI_START, '() -> ()']]
      : [
          [abi.EXPORT_MAIN, '() -> (i32)'],
          [abi.EXPORT_INIT, '() -> ()'],
        ];
  for (const [exportName, expected] of expectations) {
    const sig = signatures?.exports.get(exportName);
    if (sig !== undefined && formatSignature(sig) !== expected) {
      throw new ModuleError(
        ErrorCode.MISSING_EXPORT,
        `function '${name}' exports '${exportName}' as ${formatSignature(sig)}; it must be ${expected}` +
          (exportName === abi.EXPORT_MAIN
            ? ' (write `export function main(): i32`)'
            : exportName === abi.EXPORT_INIT
              ? ' (write `export function init(): void`)'
              : ''),
        { function: name, export: exportName, signature: formatSignature(sig), expected },
      );
    }
  }
}
