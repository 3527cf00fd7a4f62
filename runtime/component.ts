/**
 * Main thread. Registering a WebAssembly component: transpile it with jco (its programmatic
 * API, `@bytecodealliance/jco-transpile`), check that its world is nuvola's function world
 * (`wit/nuvola-function.wit`), and hand the workers the glue and the core modules. The core
 * module that owns the memory goes through the same checks and snapshot rewrite as any guest,
 * so a component gets the same limits, snapshots and reset. The other core modules are checked
 * for state a reset would miss (snapshot/core-state.ts): a component with such a module gets a
 * fresh instance for every call. The exports that could be the component's `realloc` are
 * listed, so that the workers mark the input the glue copies into what they return.
 *
 * Transpiling takes tens of milliseconds and more: its output is cached by the component's
 * content hash, in memory and (unless turned off) in a directory, so a second registration of
 * the same bytes, in this process or a later one, skips it.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { lstat, mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { ErrorCode, ModuleError } from './errors.js';
import { checkModule, type CheckedModule } from './module-check.js';
import { coreModuleState } from './snapshot/core-state.js';
import { exportSignatures } from './wasm-binary.js';
import type { ComponentCode } from './protocol.js';
import { HOST_INTERFACE } from './worker/component.js';

/** What every component function must look like (the file ships as `wit/nuvola-function.wit`). */
export const FUNCTION_WORLD = `package nuvola:function@0.1.0;

interface host {
  log: func(message: string);
}

world function {
  import host;
  export run: func(input: list<u8>) -> result<list<u8>, string>;
}`;

/** Bump when the glue post-processing below changes: it is part of the cache key. */
const CACHE_FORMAT = 'nuvola-component-1';

let cacheKeyPrefix: string | undefined;

/** The cache format and the installed jco-transpile's version: its output changes with it. */
function cachePrefix(): string {
  if (cacheKeyPrefix === undefined) {
    let version = 'unknown';
    let dir = dirname(createRequire(import.meta.url).resolve('@bytecodealliance/jco-transpile'));
    for (;;) {
      try {
        const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
        if (pkg.name === '@bytecodealliance/jco-transpile') {
          version = pkg.version ?? version;
          break;
        }
      } catch {
        // No package.json at this level.
      }
      const up = dirname(dir);
      if (up === dir) break;
      dir = up;
    }
    cacheKeyPrefix = `${CACHE_FORMAT}/jco-transpile-${version}`;
  }
  return cacheKeyPrefix;
}

interface Transpiled {
  /** Glue as a function body returning jco's `instantiate`. */
  glue: string;
  /** Core modules by the names the glue asks for. */
  cores: Record<string, Uint8Array>;
  imports: string[];
  exports: [string, string][];
  /** The component's world as WIT (wasm-tools' `component wit`). */
  wit: string;
}

const memoryCache = new Map<string, Promise<Transpiled>>();

export interface PreparedComponent {
  checked: CheckedModule;
  code: ComponentCode;
}

/**
 * Transpiles (or finds in the cache) and checks a component. `cacheDir`: where transpiled
 * output is kept across processes; null keeps it in memory only.
 */
export async function prepareComponent(
  name: string,
  bytes: Uint8Array,
  memoryLimitPages: number,
  cacheDir: string | null,
  rewrite: { fuel?: boolean } = {},
): Promise<PreparedComponent> {
  const hash = createHash('sha256').update(cachePrefix()).update(bytes).digest('hex');
  const dir = cacheDir === null || !(await trustedDir(cacheDir)) ? undefined : join(cacheDir, hash);
  let pending = memoryCache.get(hash);
  if (pending === undefined) {
    pending = (async () => (dir !== undefined ? await readEntry(dir) : undefined) ?? transpile(name, bytes))();
    memoryCache.set(hash, pending);
    // A failure is not cached: the next registration tries again (and reports again).
    pending.catch(() => memoryCache.delete(hash));
  }
  const transpiled = await pending;
  if (dir !== undefined) await writeEntry(dir, transpiled);
  checkWorld(name, transpiled);

  const modules: Record<string, WebAssembly.Module> = {};
  let main: string | undefined;
  /** The core modules that define a memory: only one may. */
  const memories: string[] = [];
  let kept: string | undefined;
  const reallocs: Record<string, string[]> = {};
  for (const [file, core] of Object.entries(transpiled.cores)) {
    const module = await WebAssembly.compile(core as Uint8Array<ArrayBuffer>);
    const candidates = reallocExports(core);
    if (candidates === undefined) kept ??= `its core module '${file}' has exports whose types nuvola cannot read`;
    else if (candidates.length > 0) reallocs[file] = candidates;
    const ownsMemory =
      WebAssembly.Module.exports(module).some((e) => e.kind === 'memory') &&
      !WebAssembly.Module.imports(module).some((i) => i.kind === 'memory');
    if (ownsMemory) {
      main ??= file;
      memories.push(file);
      continue;
    }
    modules[file] = module;
    const state = coreModuleState(core);
    if (state.definesMemory) memories.push(file);
    if (state.kept !== undefined) kept ??= `its core module '${file}' ${state.kept}`;
  }
  if (memories.length > 1) {
    throw new ModuleError(
      ErrorCode.INVALID_MODULE,
      `function '${name}': components with more than one memory are not supported (${memories[0]} and ${memories[1]} each define one)`,
      {
        function: name,
      },
    );
  }
  if (main === undefined) {
    throw new ModuleError(
      ErrorCode.INVALID_MODULE,
      `function '${name}': the component defines no memory; nuvola's function world passes bytes through one`,
      {
        function: name,
      },
    );
  }
  const checked = await checkModule(name, transpiled.cores[main]!, memoryLimitPages, 'component-core', rewrite);
  if (kept !== undefined && checked.layout.tracked) {
    // Only the memory-owning module is snapshotted: the component is replaced after every call.
    checked.layout = {
      ...checked.layout,
      tracked: false,
      resetNote: `${kept}, which a reset does not put back; each call gets a fresh instance instead of a reset`,
    };
  }
  return { checked, code: { hash, glue: transpiled.glue, main, modules, reallocs } };
}

/**
 * The exports of a core module that could be the component's `realloc`: every function of
 * its type, `(i32, i32, i32, i32) -> (i32)`, whatever its name. The glue writes the input into
 * the range realloc returns; the worker marks that range for the reset (worker/component.ts).
 * Undefined when the module's types cannot be read.
 */
function reallocExports(core: Uint8Array): string[] | undefined {
  const signatures = exportSignatures(core);
  if (signatures === undefined) return undefined;
  const i32 = (types: string[], n: number): boolean => types.length === n && types.every((t) => t === 'i32');
  return [...signatures].filter(([, sig]) => i32(sig.params, 4) && i32(sig.results, 1)).map(([name]) => name);
}

/** A cache entry, or undefined when there is none (or only part of one, from a crash). */
async function readEntry(dir: string): Promise<Transpiled | undefined> {
  try {
    if (!(await lstat(dir)).isDirectory()) return undefined; // a link is not an entry this process wrote
    const meta = JSON.parse(await readFile(join(dir, 'meta.json'), 'utf8')) as Omit<Transpiled, 'cores' | 'glue'> & { cores: string[] };
    const cores: Record<string, Uint8Array> = {};
    for (const file of meta.cores) cores[file] = await readFile(join(dir, file));
    const glue = await readFile(join(dir, 'glue.js'), 'utf8');
    return { glue, cores, imports: meta.imports, exports: meta.exports, wit: meta.wit };
  } catch {
    return undefined;
  }
}

/** Writes a cache entry unless there is one: beside it first, then renamed, so a reader never sees half an entry. */
async function writeEntry(dir: string, transpiled: Transpiled): Promise<void> {
  try {
    await stat(join(dir, 'meta.json'));
    return;
  } catch {
    // Not there yet.
  }
  const staging = `${dir}.${process.pid}.${Date.now()}`;
  try {
    await mkdir(staging, { recursive: true });
    for (const [file, core] of Object.entries(transpiled.cores)) await writeFile(join(staging, file), core);
    await writeFile(join(staging, 'glue.js'), transpiled.glue);
    const meta = { cores: Object.keys(transpiled.cores), imports: transpiled.imports, exports: transpiled.exports, wit: transpiled.wit };
    await writeFile(join(staging, 'meta.json'), JSON.stringify(meta));
    await rename(staging, dir);
  } catch {
    // Another process cached it first, or the directory is not writable: the cache is an optimisation.
    await rm(staging, { recursive: true, force: true }).catch(() => undefined);
  }
}

/**
 * Whether the cache directory may be trusted: what it holds runs as code in the workers, so
 * it must belong to this user and be writable by nobody else (created so when missing). A
 * directory that fails the check is not used; components are then transpiled every time.
 */
async function trustedDir(dir: string): Promise<boolean> {
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    // lstat: a link to a directory is not trusted (whoever made it chose where it points).
    const stats = await lstat(dir);
    const uid = process.getuid?.();
    return stats.isDirectory() && (uid === undefined || stats.uid === uid) && (stats.mode & 0o022) === 0;
  } catch {
    return false;
  }
}

async function transpile(name: string, bytes: Uint8Array): Promise<Transpiled> {
  const { transpileBytes } = await import('@bytecodealliance/jco-transpile');
  const { componentWit } = await import('@bytecodealliance/jco-transpile/wasm-tools');
  let result: Awaited<ReturnType<typeof transpileBytes>>;
  let wit: string;
  try {
    wit = await componentWit(bytes);
    result = await transpileBytes(bytes, { name: 'component', instantiation: 'sync', emitTypescriptDeclarations: false });
  } catch (err) {
    throw new ModuleError(
      ErrorCode.INVALID_MODULE,
      `function '${name}': jco could not transpile the component: ${(err as Error).message ?? String(err)}`,
      {
        function: name,
        reason: String((err as Error).message ?? err),
      },
    );
  }
  const cores: Record<string, Uint8Array> = {};
  let source: string | undefined;
  for (const [file, content] of Object.entries(result.files)) {
    if (file.endsWith('.wasm')) cores[file] = content;
    else if (file === 'component.js') source = new TextDecoder().decode(content);
  }
  if (source === undefined) {
    throw new ModuleError(ErrorCode.INVALID_MODULE, `function '${name}': jco produced no instantiation code for the component`, {
      function: name,
    });
  }
  return { glue: glueBody(name, source), cores, imports: result.imports, exports: result.exports, wit };
}

/**
 * jco's module → a function body returning `instantiate`. The glue of a component whose
 * imports are all nuvola's has no `import` statements (its imports are instantiate's
 * argument); it exports `instantiate` and `_util`. Its debug logger reads `process.env` on
 * every call (about a seventh of a call's time, measured): read once instead.
 */
function glueBody(name: string, source: string): string {
  if (/^import\s/m.test(source)) {
    throw new ModuleError(ErrorCode.COMPONENT_WORLD, `function '${name}': the component imports modules nuvola does not provide`, {
      function: name,
    });
  }
  const body = source
    .replace(/^export function instantiate\(/m, 'function instantiate(')
    .replace(/^export const /gm, 'const ')
    .replace(/if \(!globalThis\?\.process\?\.env\?\.JCO_DEBUG\) \{ return; \}/g, 'if (!JCO_DEBUG) { return; }');
  if (/^export\s/m.test(body)) {
    throw new ModuleError(
      ErrorCode.INVALID_MODULE,
      `function '${name}': jco's output has exports nuvola does not know; please report this with the component attached`,
      {
        function: name,
      },
    );
  }
  return `"use strict";\nconst JCO_DEBUG = Boolean(globalThis?.process?.env?.JCO_DEBUG);\n${body}\nreturn instantiate;`;
}

/** The component must export `run` and import nothing but nuvola's host interface. */
function checkWorld(name: string, transpiled: Transpiled): void {
  const exported = transpiled.exports.map(([n, kind]) => `${n} (${kind})`);
  const extraImports = transpiled.imports.filter((i) => i !== HOST_INTERFACE);
  const hasRun = transpiled.exports.some(([n, kind]) => n === 'run' && kind === 'function');
  const runSignature = /export run: func\(\s*[\w-]+: list<u8>\s*\) -> result<list<u8>, string>;/;
  // The glue takes the host functions it needs out of the import object by name.
  const hostFunctions = [...transpiled.glue.matchAll(/const \{([^}]*)\} = imports\['nuvola:function\/host'\];/g)].flatMap((m) =>
    m[1]!
      .split(',')
      .map((n) => n.trim().split(':')[0]!.trim())
      .filter((n) => n !== ''),
  );
  const unknownHost = hostFunctions.filter((f) => f !== 'log');
  if (!hasRun || extraImports.length > 0 || unknownHost.length > 0 || !runSignature.test(transpiled.wit)) {
    const imported = [...transpiled.imports.filter((i) => i !== HOST_INTERFACE), ...hostFunctions.map((f) => `${HOST_INTERFACE}#${f}`)];
    const found = `exports: ${exported.join(', ') || 'none'}; imports: ${imported.join(', ') || 'none'}; world:\n${transpiled.wit.trim()}`;
    throw new ModuleError(
      ErrorCode.COMPONENT_WORLD,
      `function '${name}': the component does not implement nuvola's function world. Expected:\n${FUNCTION_WORLD}\nFound ${found}. ` +
        'Build the component against wit/nuvola-function.wit (world "function").',
      { function: name, expected: FUNCTION_WORLD, exports: exported, imports: imported, world: transpiled.wit },
    );
  }
}
