/**
 * Main thread (or the CLI). Compiles an AssemblyScript guest with the flags nuvola needs and
 * the "nuvola" SDK on the package path, wherever the source file lives:
 * no bindings (they would instantiate with empty imports), the freeing `incremental`
 * runtime, and top-level code exported as `_initialize` so the host decides when it runs.
 */
import type ascModule from 'assemblyscript/asc';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as abi from '../guest/sdk/nuvola/abi.js';
import { ErrorCode, InvalidOptionError, ModuleError } from './errors.js';
import { WASI_START } from './capabilities/wasi/manifest.js';
import { dropCustomSection, embedSourceMap } from './source-map.js';

export interface BuildOptions {
  /** Where to write the `.wasm`; when omitted the bytes are only returned. */
  outFile?: string;
  /** Optimisation level 0–3. Default 3. */
  optimizeLevel?: number;
  /** Keep function names in the binary so traps show readable frames. Default false. */
  debug?: boolean;
  /**
   * Embed the compiler's source map (a `nuvola.sourcemap` custom section: file names and
   * positions, not the sources), so that traps and aborts name the guest's own
   * `file.ts:line:column`. Default true; false gives a smaller module.
   */
  sourceMap?: boolean;
  /**
   * Build a WASI command with `@assemblyscript/wasi-shim` (console, process.stdin/stdout,
   * process.argv/env through WASI): top-level code becomes `_start`, which runs once per
   * call. Register the result as usual (`abi` is detected). Default false.
   */
  wasi?: boolean;
}

/**
 * The WASI shim's compiler options (its asconfig.json: a library folder and the globals it
 * replaces), as flags: asc's API resolves a config's `lib` against the working directory.
 */
function wasiShimFlags(): string[] {
  const dir = dirname(createRequire(import.meta.url).resolve('@assemblyscript/wasi-shim/package.json'));
  const { options } = JSON.parse(readFileSync(join(dir, 'asconfig.json'), 'utf8')) as { options: { lib: string; use: string[] } };
  // asc joins a library folder onto its base directory (the working directory), so relative.
  return ['--lib', relative(process.cwd(), resolve(dir, options.lib)) || '.', ...options.use.flatMap((u) => ['--use', u])];
}

/** The directory holding the guest SDK package `nuvola`. */
export function sdkPath(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, 'guest', 'sdk');
    if (existsSync(join(candidate, 'nuvola', 'index.ts'))) return candidate;
    const parent = dirname(dir);
    if (parent === dir) throw new Error('nuvola guest SDK not found next to the runtime; reinstall the package');
    dir = parent;
  }
}

/** The build in progress: asc keeps process-wide state, so builds run one at a time. */
let building: Promise<unknown> = Promise.resolve();

/** Compiles `source` (an AssemblyScript file) and returns the Wasm bytes. */
export function buildGuest(source: string, options: BuildOptions = {}): Promise<Uint8Array> {
  const level = options.optimizeLevel;
  if (level !== undefined && !(Number.isInteger(level) && level >= 0 && level <= 3)) {
    const error = new InvalidOptionError(ErrorCode.INVALID_OPTION, `options.optimizeLevel must be 0, 1, 2 or 3, got ${String(level)}`, {
      path: 'options.optimizeLevel',
    });
    return Promise.reject(error);
  }
  // Read now, not when the build's turn comes: the caller may change them meanwhile.
  const input = resolve(source);
  const settings = { ...options, ...(options.outFile !== undefined ? { outFile: resolve(options.outFile) } : {}) };
  const build = building.then(
    () => buildNow(source, input, settings),
    () => buildNow(source, input, settings),
  );
  building = build.catch(() => undefined);
  return build;
}

/** `source` as the caller wrote it (for messages), `input` resolved when the build was asked for. */
async function buildNow(source: string, input: string, options: BuildOptions): Promise<Uint8Array> {
  if (!existsSync(input)) {
    throw new ModuleError(ErrorCode.BUILD_FAILED, `cannot build ${source}: no such file`, { source: input });
  }
  const level = options.optimizeLevel ?? 3;
  const args = [
    input,
    '--outFile',
    'module.wasm',
    '--path',
    sdkPath(),
    '--runtime',
    'incremental',
    '--exportStart',
    options.wasi ? WASI_START : abi.EXPORT_START,
    '--optimizeLevel',
    String(level),
    '--shrinkLevel',
    '0',
    // Node 24 runs 128-bit SIMD; nuvola's snapshot rewrite tracks its stores.
    '--enable',
    'simd',
    // Exports __collect, which the boot instance runs before the snapshot is taken, so that
    // calls do not start with the garbage collector half-way through a cycle.
    '--exportRuntime',
    '--noColors',
  ];
  if (options.debug) args.push('--debug');
  const withMap = options.sourceMap !== false;
  if (withMap) args.push('--sourceMap');
  // Loaded on the first build, not with the package: the compiler takes ~500 ms to load and
  // uses top-level await, which would make `require('nuvola')` fail (ERR_REQUIRE_ASYNC_MODULE).
  const asc: typeof ascModule = (await import('assemblyscript/asc')).default;
  if (options.wasi) args.push(...wasiShimFlags());
  let binary: Uint8Array | undefined;
  let sourceMap: string | undefined;
  const errors: string[] = [];
  // asc adds the files of a `--lib` folder to its process-wide standard library and keeps
  // them: a later build without the WASI shim would then compile the shim's files too.
  const library = asc.libraryFiles as Record<string, string>;
  const standard = new Set(Object.keys(library));
  let result: Awaited<ReturnType<typeof ascModule.main>>;
  try {
    result = await asc.main(args, {
      writeFile(name: string, contents: Uint8Array | string) {
        if (name.endsWith('.wasm') && typeof contents !== 'string') binary = contents;
        else if (name.endsWith('.wasm.map')) sourceMap = typeof contents === 'string' ? contents : Buffer.from(contents).toString();
      },
      stderr: {
        write(chunk: string | Uint8Array) {
          errors.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString());
          return true;
        },
      },
    } as unknown as ascModule.APIOptions);
  } finally {
    for (const name of Object.keys(library)) if (!standard.has(name)) delete library[name];
  }
  if (result.error || binary === undefined) {
    const diagnostics = errors.join('').trim();
    throw new ModuleError(ErrorCode.BUILD_FAILED, `cannot build ${source}:\n${diagnostics || (result.error?.message ?? 'no output')}`, {
      source: input,
      diagnostics,
    });
  }
  if (withMap && sourceMap !== undefined) binary = withSourceMap(binary, sourceMap);
  if (options.outFile !== undefined) {
    const { mkdir, writeFile } = await import('node:fs/promises');
    await mkdir(dirname(resolve(options.outFile)), { recursive: true });
    await writeFile(options.outFile, binary);
  }
  return binary;
}

/**
 * The module with asc's source map embedded (runtime/source-map.ts), its `sourceMappingURL`
 * section (naming a file nobody writes) dropped. Sources are named as the build's working
 * directory sees them, the standard library as `~lib/…`.
 */
function withSourceMap(binary: Uint8Array, json: string): Uint8Array {
  const map = JSON.parse(json) as { sources: string[]; mappings: string };
  return embedSourceMap(dropCustomSection(binary, 'sourceMappingURL'), { sources: map.sources, mappings: map.mappings });
}
