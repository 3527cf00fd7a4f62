/**
 * Main thread. `--functions <dir>`: every `.wasm` (module or component) and `.ts` (an
 * AssemblyScript guest, built first) directly in a folder, published under its file name; a
 * `<name>.json` beside one holds its register options.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { basename, extname, join } from 'node:path';
import { buildGuest, ErrorCode, InvalidOptionError, type FunctionOptions } from '../runtime/index.js';

/** How a function is published (the server's `publish`). */
export type Publish = (name: string, wasm: Uint8Array | string, options?: FunctionOptions) => Promise<void>;

/** Publishes every function of `dir`; resolves with their names. Fails on the first that does not register (its file in the message). */
export async function loadFunctions(server: { publish: Publish }, dir: string): Promise<string[]> {
  let entries: string[];
  try {
    entries = readdirSync(dir).sort();
  } catch (err) {
    throw new InvalidOptionError(ErrorCode.INVALID_OPTION, `--functions ${dir}: not a readable folder (${(err as Error).message})`, {
      path: 'functions',
    });
  }
  const names: string[] = [];
  for (const file of entries) {
    const ext = extname(file);
    if (ext !== '.wasm' && ext !== '.ts') continue;
    if (file.endsWith('.d.ts')) continue;
    const name = basename(file, ext);
    const path = join(dir, file);
    // A guest built beside its source: the source wins, once.
    if (ext === '.wasm' && existsSync(join(dir, `${name}.ts`))) continue;
    let options: FunctionOptions | undefined;
    const optionsFile = join(dir, `${name}.json`);
    if (existsSync(optionsFile)) {
      try {
        options = JSON.parse(readFileSync(optionsFile, 'utf8')) as FunctionOptions;
      } catch (err) {
        throw new InvalidOptionError(ErrorCode.INVALID_OPTION, `${optionsFile}: not JSON (${(err as Error).message})`, {
          path: optionsFile,
        });
      }
    }
    try {
      const wasm = ext === '.ts' ? await buildGuest(path) : path;
      await server.publish(name, wasm, options);
    } catch (err) {
      (err as Error).message = `${path}: ${(err as Error).message}`;
      throw err;
    }
    names.push(name);
  }
  return names;
}
