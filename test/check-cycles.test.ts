// scripts/check-cycles.mjs, run by `npm run lint`: it finds value and type-only import cycles in
// real TypeScript files, passes only the allowed ones, and passes on this repository.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cycles, graphs, judge } from '../scripts/check-cycles.mjs';

const dir = mkdtempSync(join(tmpdir(), 'nuvola-cycles-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function files(tree: Record<string, string>): void {
  for (const [name, text] of Object.entries(tree)) {
    mkdirSync(join(dir, name, '..'), { recursive: true });
    writeFileSync(join(dir, name), text);
  }
}

files({
  // a → b by value; b → a only for a type: a type-only cycle.
  'src/a.ts': "import { b } from './b.js';\nexport interface A { n: number }\nexport const a = b + 1;\n",
  'src/b.ts': "import type { A } from './a.js';\nexport const b = 1;\nexport function f(x: A): number { return x.n; }\n",
  // c ⇄ d by value, through a folder; the import of a name used only as a type is elided.
  'src/c.ts': "import { d } from './sub/d.js';\nexport const c = (): number => d();\n",
  'src/sub/d.ts': "import { c } from '../c.js';\nexport const d = (): number => c.length;\n",
  'src/e.ts': "import { A } from './a.js';\nexport const e = (x: A): A => x;\n",
  'src/f.ts': "export * from './e.js';\nexport const lazy = () => import('./a.js');\n",
});

describe('check-cycles', () => {
  const { value, all } = graphs(dir, ['src']);

  it('reads value edges from the compiled JavaScript and all edges from the source', () => {
    expect([...value.get('src/b.ts')!]).toEqual([]);
    expect([...all.get('src/b.ts')!]).toEqual(['src/a.ts']);
    expect([...value.get('src/e.ts')!]).toEqual([]);
    expect([...all.get('src/e.ts')!]).toEqual(['src/a.ts']);
    expect([...value.get('src/f.ts')!]).toEqual(['src/e.ts']);
    expect([...value.get('src/sub/d.ts')!]).toEqual(['src/c.ts']);
  });

  it('finds the value cycle and, separately, the type-only one', () => {
    const valueCycles = cycles(value);
    expect(valueCycles).toEqual([['src/c.ts', 'src/sub/d.ts']]);
    const { fresh, typeOnly, stale } = judge(valueCycles, cycles(all), []);
    expect(typeOnly).toEqual([['src/a.ts', 'src/b.ts']]);
    expect(fresh).toEqual([
      { kind: 'value', files: ['src/c.ts', 'src/sub/d.ts'] },
      { kind: 'type', files: ['src/a.ts', 'src/b.ts'] },
    ]);
    expect(stale).toEqual([]);
  });

  it('passes an allowed cycle, fails one that grew, and reports an entry that matches nothing', () => {
    const allowed = [
      { kind: 'value' as const, owner: 'x', files: ['src/c.ts', 'src/sub/d.ts'] },
      { kind: 'type' as const, owner: 'y', files: ['src/a.ts'] },
      { kind: 'type' as const, owner: 'z', files: ['src/gone.ts'] },
    ];
    const { fresh, stale } = judge(cycles(value), cycles(all), allowed);
    expect(fresh).toEqual([{ kind: 'type', files: ['src/a.ts', 'src/b.ts'] }]);
    expect(stale.map((a) => a.owner)).toEqual(['y', 'z']);
  });

  it('passes on this repository', () => {
    const out = execFileSync(process.execPath, [new URL('../scripts/check-cycles.mjs', import.meta.url).pathname], { encoding: 'utf8' });
    expect(out).toMatch(/no new import cycle/);
  }, 120_000);
});
