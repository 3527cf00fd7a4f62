// Vitest global setup: compiles every test guest (test/guests/<suite>_<case>.ts) once with the
// published builder, into test/.build/. A guest is rebuilt when it or the SDK changed.
import { mkdir, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { buildGuest } from 'nuvola';

const root = new URL('../../', import.meta.url).pathname;
const sources = join(root, 'test', 'guests');
const out = join(root, 'test', '.build');
const sdk = join(root, 'guest', 'sdk', 'nuvola');

async function mtime(path: string): Promise<number> {
  try {
    return (await stat(path)).mtimeMs;
  } catch {
    return 0;
  }
}

export default async function setup(): Promise<void> {
  await mkdir(out, { recursive: true });
  const sdkTime = Math.max(...(await Promise.all((await readdir(sdk)).map((f) => mtime(join(sdk, f))))));
  for (const file of (await readdir(sources)).filter((f) => f.endsWith('.ts'))) {
    const target = join(out, file.replace(/\.ts$/, '.wasm'));
    const built = await mtime(target);
    if (built > sdkTime && built > (await mtime(join(sources, file)))) continue;
    await buildGuest(join(sources, file), { outFile: target, optimizeLevel: 1 });
  }
}
