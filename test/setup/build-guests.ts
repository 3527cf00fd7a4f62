// Vitest global setup: compiles every test guest (test/guests/<suite>_<case>.ts), and every
// benchmark guest (bench/guests/<name>.ts, as bench_<name>), once with the published builder,
// into test/.build/. A guest is rebuilt when it or the SDK changed. WASI commands: the
// AssemblyScript ones (test/guests/wasi/*.ts and guest/examples/wasi/*.ts, as wasi_<name>)
// with the WASI shim, the C ones (guest/examples/wasi/*.c, as wasi_<name>_c) with clang and
// wasi-libc, which must be installed (`npm test` installs them as root): a missing compiler fails here.
import { execFile } from 'node:child_process';
import { mkdir, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
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
  for (const dir of [join(sources, 'wasi'), join(root, 'guest', 'examples', 'wasi')]) {
    for (const file of await readdir(dir)) {
      const source = join(dir, file);
      if (file.endsWith('.ts')) {
        const target = join(out, `wasi_${file.replace(/\.ts$/, '.wasm')}`);
        if ((await mtime(target)) > Math.max(sdkTime, await mtime(source))) continue;
        await buildGuest(source, { outFile: target, optimizeLevel: 1, wasi: true });
      } else if (file.endsWith('.c')) {
        const target = join(out, `wasi_${file.replace(/\.c$/, '_c.wasm')}`);
        if ((await mtime(target)) > (await mtime(source))) continue;
        await buildC(source, target);
      }
    }
  }
}

async function buildC(source: string, target: string): Promise<void> {
  try {
    await promisify(execFile)('clang', ['--target=wasm32-wasi', '-O2', '-Wl,--strip-all', '-o', target, source]);
  } catch (err) {
    throw new Error(
      `cannot build the C guest ${source} (${(err as Error).message.trim()}). The WASI tests need clang, lld and wasi-libc: ` +
        'apt-get install -y clang lld wasi-libc libclang-rt-14-dev-wasm32 (`npm test` checks this first: scripts/system-deps.mjs)',
      { cause: err },
    );
  }
}
