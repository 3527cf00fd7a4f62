/**
 * `nuvola init [dir]`: scaffolds an application that embeds nuvola. Host code (Node.js 24,
 * TypeScript run directly by Node's type stripping) and guest code (AssemblyScript) both import
 * from "nuvola" but are different languages, so each half has its own tsconfig: the host's
 * resolves the package's types, the guests' extends AssemblyScript's standard library types and
 * maps "nuvola" to the guest SDK shipped in the package. Editors pick the nearest tsconfig, so
 * both halves get completion and errors.
 */
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';

/** The files of a new application, relative to its folder. */
function files(name: string, version: string): Record<string, string> {
  const json = (value: unknown): string => `${JSON.stringify(value, null, 2)}\n`;
  return {
    'package.json': json({
      name,
      private: true,
      type: 'module',
      scripts: {
        build: 'nuvola build guests/hello.ts -o build/hello.wasm',
        start: 'npm run build && node src/main.ts',
        test: 'node --test test/hello.test.ts',
        check: 'tsc -p tsconfig.json && tsc -p guests/tsconfig.json',
      },
      dependencies: { nuvola: `^${version}` },
      devDependencies: { '@types/node': '^24', node: '^24', typescript: '^5.9' },
    }),
    'tsconfig.json': json({
      compilerOptions: {
        target: 'ES2023',
        lib: ['ES2024', 'ESNext.Disposable'],
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        strict: true,
        noEmit: true,
        erasableSyntaxOnly: true,
        allowImportingTsExtensions: true,
        skipLibCheck: true,
        types: ['node'],
      },
      include: ['src', 'test'],
    }),
    'guests/tsconfig.json': json({
      extends: 'assemblyscript/std/assembly.json',
      compilerOptions: {
        noEmit: true,
        paths: {
          nuvola: ['../node_modules/nuvola/guest/sdk/nuvola/index.ts'],
          '*': ['../node_modules/assemblyscript/std/assembly/*'],
        },
      },
      include: ['./**/*.ts'],
    }),
    'guests/hello.ts': [
      '// A guest: AssemblyScript, built to WebAssembly by `npm run build` (nuvola build).',
      'import { inputString, outputString, log } from "nuvola";',
      '',
      '// Optional: runs once at register; every instance starts from its result.',
      'export function init(): void {}',
      '',
      'export function main(): i32 {',
      '  const name = inputString();',
      '  log("greeting " + name);',
      '  outputString("Hello " + (name.length > 0 ? name : "world"));',
      '  return 0; // the return code',
      '}',
      '',
    ].join('\n'),
    'src/main.ts': [
      '// The host: a Node.js program that embeds the runtime and calls the guest.',
      "import { createRuntime } from 'nuvola';",
      '',
      'await using rt = await createRuntime({ workers: 2 });',
      "await rt.register('hello', new URL('../build/hello.wasm', import.meta.url));",
      "const { output, returnCode } = await rt.invoke('hello', process.argv[2] ?? '');",
      'console.log(new TextDecoder().decode(output), returnCode);',
      '',
    ].join('\n'),
    'test/hello.test.ts': [
      "// The guest's own tests: testGuest builds it and runs it on a runtime of its own.",
      "import { test } from 'node:test';",
      "import assert from 'node:assert/strict';",
      "import { testGuest } from 'nuvola/testing';",
      '',
      "test('hello greets by name, and the world by default', async () => {",
      "  await using hello = await testGuest(new URL('../guests/hello.ts', import.meta.url));",
      "  assert.equal(await hello.text('you'), 'Hello you');",
      "  assert.equal(await hello.text(''), 'Hello world');",
      "  assert.deepEqual(hello.logs, ['greeting you', 'greeting ']);",
      '});',
      '',
    ].join('\n'),
    '.gitignore': 'node_modules/\nbuild/\n',
    'README.md': [
      `# ${name}`,
      '',
      'An application embedding [nuvola](https://www.npmjs.com/package/nuvola) (Node.js 24 or newer).',
      '',
      '```sh',
      'npm install',
      'npm start            # builds guests/hello.ts, then runs src/main.ts',
      "npm test             # the guest's tests (test/, with testGuest from nuvola/testing)",
      'npm run check        # type-checks the host (tsconfig.json) and the guests (guests/tsconfig.json)',
      '```',
      '',
      '- `src/` — the host, TypeScript run directly by Node (type stripping): creates the runtime, registers and calls guests.',
      '- `guests/` — the functions, AssemblyScript importing the guest SDK from "nuvola"; its own tsconfig gives editors',
      "  AssemblyScript's types (`i32`, …) there and the package's host types in `src/`.",
      '- `build/` — the built `.wasm` modules.',
      '',
    ].join('\n'),
  };
}

/** Writes a new application into `dir` (created if needed); refuses to overwrite anything. */
export function initApp(dir: string, version: string): string[] {
  const root = resolve(dir);
  if (existsSync(root) && readdirSync(root).some((f) => f !== '.git')) {
    throw new Error(`nuvola init: ${root} is not empty; run it in a new or empty folder`);
  }
  const written: string[] = [];
  for (const [path, text] of Object.entries(
    files(
      basename(root)
        .toLowerCase()
        .replace(/[^a-z0-9-]+/g, '-') || 'app',
      version,
    ),
  )) {
    const target = join(root, path);
    mkdirSync(join(target, '..'), { recursive: true });
    writeFileSync(target, text, { flag: 'wx' });
    written.push(path);
  }
  return written;
}
