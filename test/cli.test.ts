// The CLI as a user runs it: a guest file outside the project, built and run by `nuvola`.
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { until } from 'nuvola/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildGuest } from 'nuvola';

const run = promisify(execFile);
const cli = new URL('../dist/runtime/cli/main.js', import.meta.url).pathname;

async function nuvola(args: string[], cwd: string): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [cli, ...args], { cwd });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('nuvola CLI', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'nuvola-cli-'));
    await writeFile(
      join(dir, 'greet.ts'),
      `import { inputString, outputString } from "nuvola";
export function main(): i32 { outputString("hi " + inputString()); return inputString().length; }`,
    );
    await writeFile(join(dir, 'broken.ts'), `export function main(): i32 { return undefinedThing; }`);
    await writeFile(
      join(dir, 'caller.ts'),
      `import { chain, input, outputString } from "nuvola";
export function main(): i32 { const id = chain.call("greet", input()); chain.wait(id); outputString("caller got " + chain.outputString(id)); return 0; }`,
    );
    await writeFile(
      join(dir, 'ranks.ts'),
      `import { comm, outputString } from "nuvola";
export function main(): i32 { outputString("rank " + comm.rank().toString() + " of " + comm.size().toString() + ";"); return 0; }`,
    );
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('builds a guest that lives outside the project', async () => {
    const r = await nuvola(['build', 'greet.ts', '-o', 'out/greet.wasm'], dir);
    expect(r.code).toBe(0);
    expect((await stat(join(dir, 'out', 'greet.wasm'))).size).toBeGreaterThan(100);
  });

  it(
    'builds beside the source by default, several sources into a folder, and refuses -o file for several',
    { timeout: 90_000 },
    async () => {
      expect((await nuvola(['build', 'greet.ts'], dir)).code).toBe(0);
      expect((await stat(join(dir, 'greet.wasm'))).size).toBeGreaterThan(100);
      const many = await nuvola(['build', 'greet.ts', 'caller.ts', '-o', 'many/', '-O', '0'], dir);
      expect(many.code, many.stderr).toBe(0);
      for (const f of ['greet.wasm', 'caller.wasm']) expect((await stat(join(dir, 'many', f))).size).toBeGreaterThan(100);
      const wrong = await nuvola(['build', 'greet.ts', 'caller.ts', '-o', 'one.wasm'], dir);
      expect(wrong.code).not.toBe(0);
      expect(wrong.stderr).toContain('names one file but there are 2 sources');
    },
  );

  it('runs several modules (the first calls the next by its file name) and a group', { timeout: 90_000 }, async () => {
    const chained = await nuvola(['run', 'caller.ts', 'greet.ts', '-i', 'there'], dir);
    expect(chained.code, chained.stderr).toBe(0);
    expect(chained.stdout).toBe('caller got hi there');
    const group = await nuvola(['run', 'ranks.ts', '--group', '3'], dir);
    expect(group.stdout).toBe('rank 0 of 3;rank 1 of 3;rank 2 of 3;');
    expect(group.code).toBe(0);
  });

  it('builds again when a source changes (--watch)', { timeout: 90_000 }, async () => {
    await writeFile(join(dir, 'watched.ts'), `export function main(): i32 { return 1; }`);
    const child = spawn(process.execPath, [cli, 'build', 'watched.ts', '--watch', '-O', '0'], { cwd: dir });
    try {
      let err = '';
      const seen = (count: number): Promise<void> =>
        new Promise((resolve, reject) => {
          const check = (): void => {
            if ((err.match(/built /g) ?? []).length >= count) resolve();
          };
          child.stderr.on('data', (chunk: Buffer) => {
            err += chunk.toString();
            check();
          });
          child.once('exit', (code) => reject(new Error(`watch exited with ${code}: ${err}`)));
          check();
        });
      await seen(1);
      await until(() => err.includes('watching'));
      const first = (await stat(join(dir, 'watched.wasm'))).mtimeMs;
      await writeFile(join(dir, 'watched.ts'), `export function main(): i32 { return 2; }`);
      await seen(2);
      expect((await stat(join(dir, 'watched.wasm'))).mtimeMs).toBeGreaterThan(first);
      const run = await nuvola(['run', 'watched.wasm'], dir);
      expect(run.code).toBe(2);
    } finally {
      child.kill();
    }
  });

  it('runs a module, prints its output and exits with its return code', async () => {
    const r = await nuvola(['run', 'out/greet.wasm', '--input', 'abc'], dir);
    expect(r.stdout).toBe('hi abc');
    expect(r.code).toBe(3);
  });

  it('runs a .ts guest directly by building it first', async () => {
    const r = await nuvola(['run', 'greet.ts', '-i', 'xy'], dir);
    expect(r.stdout).toBe('hi xy');
    expect(r.code).toBe(2);
  });

  it('reports compile errors with the compiler diagnostics and a coded message', async () => {
    const r = await nuvola(['build', 'broken.ts', '-o', 'broken.wasm'], dir);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('E_BUILD_FAILED');
    expect(r.stderr).toContain('undefinedThing');
  });

  it('refuses an optimisation level other than 0 to 3, from the command line and from buildGuest', async () => {
    for (const level of ['x', '9', '1.5', '-1']) {
      const r = await nuvola(['build', 'greet.ts', '-O', level, '-o', `bad-${level}.wasm`], dir);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain('expected 0, 1, 2 or 3');
      await expect(stat(join(dir, `bad-${level}.wasm`))).rejects.toThrow();
    }
    const err = await buildGuest(join(dir, 'greet.ts'), { optimizeLevel: 9 }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'E_INVALID_OPTION', details: { path: 'options.optimizeLevel' } });
    expect((await nuvola(['build', 'greet.ts', '-O', '0', '-o', 'o0.wasm'], dir)).code).toBe(0);
  });

  it('reports a missing module with its code', async () => {
    const r = await nuvola(['run', 'nope.wasm'], dir);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('E_INVALID_MODULE');
  });
});

describe('the README quick start', () => {
  it('`npm run demo` runs every section to the end', async () => {
    const demo = new URL('../dist/examples/demo.js', import.meta.url).pathname;
    const root = new URL('..', import.meta.url).pathname;
    const { stdout } = await run(process.execPath, [demo], { cwd: root, timeout: 150_000, maxBuffer: 16 * 1024 * 1024 });
    for (let section = 1; section <= 9; section++) expect(stdout).toMatch(new RegExp(`^${section}\\. `, 'm'));
    expect(stdout).toMatch(/word counts of 10 000 lines[\s\S]*10000 calls in/);
    expect(stdout.trimEnd().endsWith('done.')).toBe(true);
  }, 180_000);
});
