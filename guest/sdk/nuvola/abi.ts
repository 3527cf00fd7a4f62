// The host/guest ABI, version 1. This file is compiled by both sides: the AssemblyScript SDK
// (guest/sdk/nuvola) and the TypeScript host (runtime/). Keep it portable: plain `const` numbers and
// strings only, no types that exist on one side alone.
//
// AssemblyScript's `@external(module, name)` decorator needs string literals, so the SDK
// repeats the module and import names below; test/abi.test.ts checks that both agree.

/** Bumped on any incompatible change to the names or signatures below. */
export const ABI_VERSION = 1;

/** Import module for input, output and logging. */
export const MODULE_IO = 'nuvola:io';
/** `input_size(): i32` — the length in bytes of the invocation's input. */
export const IO_INPUT_SIZE = 'input_size';
/** `input_read(ptr: i32, len: i32): i32` — copies up to `len` input bytes to `ptr`, returns the count. */
export const IO_INPUT_READ = 'input_read';
/** `output_write(ptr: i32, len: i32): void` — sets the invocation's output (replaces earlier output). */
export const IO_OUTPUT_WRITE = 'output_write';
/** `log(ptr: i32, len: i32): void` — writes a UTF-8 line to the runtime's log. */
export const IO_LOG = 'log';
/** `sleep(ms: i32): void` — suspends the calling instance (not its worker) for `ms` milliseconds. */
export const IO_SLEEP = 'sleep';

/**
 * AssemblyScript's own runtime imports. They live in module "env" because the compiler emits
 * them there; nuvola's capabilities never use "env".
 */
export const MODULE_ENV = 'env';
export const ENV_ABORT = 'abort';
export const ENV_TRACE = 'trace';
export const ENV_SEED = 'seed';

/** Exported entry point, `main(): i32`, whose result is the invocation's return code. */
export const EXPORT_MAIN = 'main';
/** Optional export, `init(): void`, run once per instance before the first `main`. */
export const EXPORT_INIT = 'init';
/** Optional export that runs top-level statements (`asc --exportStart`), called at instantiation. */
export const EXPORT_START = '_initialize';
/** The linear memory every guest must export. */
export const EXPORT_MEMORY = 'memory';

/** Size of one Wasm page in bytes. */
export const PAGE_SIZE = 65536;
