// Vitest global setup: compiles every test guest (test/guests/<suite>_<case>.ts), and every
// benchmark guest (bench/guests/<name>.ts, as bench_<name>), once with the published builder,
// into test/.build/. A guest is rebuilt when it or the SDK changed.
import { mkdir, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { buildGuest } from 'nuvola';

const root = new URL('../../', import.meta.url).pathname;
const sources = join(root, 'test', 'guests');
const benchGuests = join(root, 'bench', 'guests');
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
  // The benchmark guests too, as bench_<name>: tests use some of them, and a broken one fails here.
  for (const [dir, prefix] of [
    [sources, ''],
    [benchGuests, 'bench_'],
  ] as const) {
    // padded.ts is a template that bench/invoke.ts fills in before building.
    for (const file of (await readdir(dir)).filter((f) => f.endsWith('.ts') && f !== 'padded.ts')) {
      const target = join(out, prefix + file.replace(/\.ts$/, '.wasm'));
      const built = await mtime(target);
      if (built > sdkTime && built > (await mtime(join(dir, file)))) continue;
      await buildGuest(join(dir, file), { outFile: target, optimizeLevel: 1 });
    }
  }
}
