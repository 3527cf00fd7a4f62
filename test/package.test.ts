// The package as an application loads it: `require('nuvola')` works (no top-level await in the
// entry's graph) and importing the entry loads neither the AssemblyScript compiler nor ioredis,
// which only building a guest or connecting to Redis needs.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { normalize } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = new URL('../', import.meta.url).pathname;

function run(args: string[]): string {
  return execFileSync(process.execPath, args, { cwd: root, encoding: 'utf8' }).trim();
}

describe('package entry', () => {
  it('loads with require()', () => {
    const out = run(['-e', "const n = require('nuvola'); console.log(typeof n.createRuntime, typeof n.buildGuest)"]);
    expect(out).toBe('function function');
  });

  it('does not load the compiler or ioredis on import', () => {
    // Every module the import resolves, ES or CommonJS, goes through this hook.
    const out = run([
      '--input-type=module',
      '-e',
      [
        "import { registerHooks } from 'node:module';",
        'const seen = [];',
        'registerHooks({ resolve(specifier, context, next) { const r = next(specifier, context); seen.push(r.url); return r; } });',
        "await import('nuvola');",
        'const count = (part) => seen.filter((url) => url.includes(part)).length;',
        "console.log(JSON.stringify({ nuvola: count('/dist/runtime/index.js'), asc: count('/node_modules/assemblyscript/'), ioredis: count('/node_modules/ioredis/') }));",
      ].join('\n'),
    ]);
    expect(JSON.parse(out)).toEqual({ nuvola: 1, asc: 0, ioredis: 0 });
  });

  it('still builds a guest after a plain import (the compiler loads on demand)', async () => {
    const out = run([
      '--input-type=module',
      '-e',
      [
        "const { buildGuest } = await import('nuvola');",
        "const bytes = await buildGuest('test/guests/core_hello.ts', { optimizeLevel: 0 });",
        'console.log(WebAssembly.validate(bytes));',
      ].join('\n'),
    ]);
    expect(out).toBe('true');
  });

  it('ships every README the docs refer to', () => {
    const packed = JSON.parse(
      execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: root, encoding: 'utf8' }),
    ) as {
      files: { path: string }[];
    }[];
    const files = new Set(packed[0]!.files.map((f) => f.path));
    const book = [...files].filter((f) => f.startsWith('docs/') && f.endsWith('.md'));
    expect(book).toEqual(
      expect.arrayContaining(['docs/README.md', 'docs/reference/errors.md', 'docs/reference/options.md', 'docs/reference/api.md']),
    );
    const docs = ['README.md', 'guest/README.md', 'runtime/README.md', ...book].map((f) => readFileSync(root + f, 'utf8')).join('\n');
    const referred = [...new Set(docs.match(/\b[a-z0-9-]+(?:\/[a-z0-9-]+)*\/README\.md/g) ?? [])].filter((f) => !f.startsWith('test/'));
    expect(referred.length).toBeGreaterThan(3);
    expect(referred.filter((f) => !files.has(f))).toEqual([]);
    // Every relative link of the README and the book points at a file that exists; outside the
    // contributors' part (which links into the repository), at one that is shipped.
    for (const doc of ['README.md', ...book]) {
      const dir = doc.includes('/') ? doc.slice(0, doc.lastIndexOf('/') + 1) : '';
      for (const [, target] of readFileSync(root + doc, 'utf8').matchAll(/\]\(([^)#:]+)(?:#[^)]*)?\)/g)) {
        const path = normalize(dir + target!).replace(/\/$/, '');
        expect(existsSync(root + path), `${doc} links to ${target}`).toBe(true);
        if (doc.startsWith('docs/contributing/')) continue;
        expect(files.has(path) || [...files].some((f) => f.startsWith(path + '/')), `${doc} links to ${target}, not shipped`).toBe(true);
      }
    }
  });

  it('ships every guest source `nuvola bench suite` builds', () => {
    const packed = JSON.parse(
      execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: root, encoding: 'utf8' }),
    ) as {
      files: { path: string }[];
    }[];
    const files = new Set(packed[0]!.files.map((f) => f.path));
    const workloads = readdirSync(root + 'bench/suite', { withFileTypes: true })
      .filter((d) => d.isDirectory() && existsSync(`${root}bench/suite/${d.name}/guests`))
      .flatMap((d) => readdirSync(`${root}bench/suite/${d.name}/guests`).map((f) => `bench/suite/${d.name}/guests/${f}`));
    expect(workloads.length).toBeGreaterThan(10);
    expect(workloads.filter((f) => !files.has(f))).toEqual([]);
  });
});
