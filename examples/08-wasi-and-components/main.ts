// Guests from other toolchains: WASI commands (here AssemblyScript with the WASI shim; C and
// Rust through wasi-libc work the same) and a WebAssembly component of nuvola's function world
// (wit/nuvola-function.wit), built here from WAT with jco's bundled wasm-tools.
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { componentEmbed, componentNew, parse } from '@bytecodealliance/jco-transpile/wasm-tools';
import { buildGuest, createRuntime, NuvolaError } from 'nuvola';

/** A project file, from this example's source or its build (dist/examples/…). */
const file = (path: string): string =>
  ['../../', '../../../'].map((up) => fileURLToPath(new URL(up + path, import.meta.url))).find((f) => existsSync(f)) ?? path;

export async function wasiAndComponentsExample(print: (line: string) => void = console.log): Promise<void> {
  const logs: string[] = [];
  const rt = await createRuntime({ workers: 2, logger: (e) => logs.push(`[${e.function}] ${e.message}`) });
  const text = (bytes: Uint8Array): string => new TextDecoder().decode(bytes);
  try {
    // A WASI command: stdin is the input, stdout the output, the exit code the return code.
    await rt.register('wc', await buildGuest(file('guest/examples/wasi/wordcount.ts'), { wasi: true }), { wasi: { args: ['--top'] } });
    const poem = 'the rain in spain\nstays mainly in the plain\n';
    const counted = await rt.invoke('wc', poem);
    print(`  WASI word count (abi ${rt.describe('wc').abi}): "${text(counted.output).trim()}" (lines words bytes top-word)`);

    // A component: transpiled by jco at register, cached by content hash.
    const wat = await readFile(file('guest/examples/component/echo.wat'), 'utf8');
    const world = await readFile(file('wit/nuvola-function.wit'), 'utf8');
    const component = await componentNew(await componentEmbed({ binary: await parse(wat), witSource: world, world: 'function' }));
    const t = performance.now();
    await rt.register('echo', component);
    print(`  component registered in ${(performance.now() - t).toFixed(0)} ms (abi ${rt.describe('echo').abi})`);
    const echoed = await rt.invoke('echo', 'hello, component');
    const refused = await rt.invoke('echo', '');
    print(`  run("hello, component") → "${text(echoed.output)}"; run("") → return code ${refused.returnCode}, "${text(refused.output)}"`);

    // A component of another world gets a typed error that shows what was expected.
    const otherWorld = 'package demo:other@0.1.0;\n\nworld other {\n  export run: func(input: string) -> string;\n}';
    const other = await componentNew(
      await componentEmbed({
        binary: await parse(`(module (memory (export "memory") 1)
          (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) (i32.const 1024))
          (func (export "run") (param i32 i32) (result i32) (i32.store (i32.const 16) (local.get 0)) (i32.store (i32.const 20) (local.get 1)) (i32.const 16))
          (func (export "cabi_post_run") (param i32)))`),
        witSource: otherWorld,
        world: 'other',
      }),
    );
    await rt.register('other', other).catch((err: NuvolaError) => print(`  a component of another world: ${err.code}`));
  } finally {
    await rt.close();
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await wasiAndComponentsExample();
