/**
 * Builds the suite's guests (at -O3), or takes them from a cache keyed by the hash of their
 * sources, the suite's guest library and the SDK: a second run builds nothing.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { tmpdir, userInfo } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildGuest } from 'nuvola';

/** The suite's source folder (bench/suite), found from here whether running from the sources or dist/. */
export const suiteSources = ((): string => {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, 'bench', 'suite');
    if (existsSync(join(candidate, 'guests', 'timed.ts'))) return candidate;
    const parent = dirname(dir);
    if (parent === dir) throw new Error('bench/suite/guests not found above the suite; reinstall the package');
    dir = parent;
  }
})();

const sdk = join(suiteSources, '..', '..', 'guest', 'sdk', 'nuvola');

async function filesOf(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((f) => f.endsWith('.ts')).map((f) => join(dir, f));
}

/** The wasm of guest `guest` of workload folder `folder`. */
export async function guestWasm(
  folder: string,
  guest: string,
  cacheDir = join(tmpdir(), `nuvola-suite-guests-${userInfo().uid}`),
): Promise<Uint8Array> {
  const source = join(suiteSources, folder, 'guests', `${guest}.ts`);
  const hash = createHash('sha256');
  for (const file of [source, ...(await filesOf(join(suiteSources, 'guests'))), ...(await filesOf(sdk))]) hash.update(await readFile(file));
  const target = join(cacheDir, `${guest}-${hash.digest('hex').slice(0, 16)}.wasm`);
  if (existsSync(target)) return readFile(target);
  const bytes = await buildGuest(source, { optimizeLevel: 3 });
  await mkdir(cacheDir, { recursive: true, mode: 0o700 });
  // Written aside and renamed: a concurrent run never reads half a file.
  const temp = `${target}.${process.pid}.tmp`;
  await writeFile(temp, bytes);
  await rename(temp, target);
  return bytes;
}
