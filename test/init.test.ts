// `nuvola init` as a new user runs it: scaffold an app in an empty folder, install (here: link
// this package and its compilers, as `npm install` would put them), type-check host and guests,
// build the guest and run the host.
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const exec = promisify(execFile);
const root = new URL('../', import.meta.url).pathname;
const cli = join(root, 'dist/runtime/cli/main.js');
const tsc = join(root, 'node_modules/typescript/bin/tsc');

async function run(args: string[], cwd: string): Promise<{ code: number; out: string }> {
  try {
    const { stdout, stderr } = await exec(process.execPath, args, { cwd });
    return { code: 0, out: stdout + stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, out: e.stdout + e.stderr };
  }
}

describe('nuvola init', () => {
  let dir: string;
  let app: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'nuvola-init-'));
    app = join(dir, 'my-app');
    const init = await run([cli, 'init', app], dir);
    expect(init.code, init.out).toBe(0);
    await mkdir(join(app, 'node_modules', '@types'), { recursive: true });
    await symlink(root, join(app, 'node_modules', 'nuvola'));
    await symlink(join(root, 'node_modules', 'assemblyscript'), join(app, 'node_modules', 'assemblyscript'));
    await symlink(join(root, 'node_modules', '@types', 'node'), join(app, 'node_modules', '@types', 'node'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('type-checks the host and the guests, each with its own tsconfig', async () => {
    const host = await run([tsc, '-p', 'tsconfig.json'], app);
    expect(host.out).toBe('');
    expect(host.code).toBe(0);
    const guests = await run([tsc, '-p', 'guests/tsconfig.json'], app);
    expect(guests.out).toBe('');
    expect(guests.code).toBe(0);
  });

  it('catches a type error in a guest (the guest check is not vacuous)', async () => {
    await writeFile(join(app, 'guests', 'broken.ts'), 'export function main(): i32 {\n  const n: i32 = "text";\n  return n;\n}\n');
    try {
      const guests = await run([tsc, '-p', 'guests/tsconfig.json'], app);
      expect(guests.code).not.toBe(0);
      expect(guests.out).toContain('broken.ts');
    } finally {
      await rm(join(app, 'guests', 'broken.ts'));
    }
  });

  it('builds the guest and runs the host', async () => {
    const build = await run([cli, 'build', 'guests/hello.ts', '-o', 'build/hello.wasm'], app);
    expect(build.code, build.out).toBe(0);
    const start = await run(['src/main.ts', 'nuvola'], app);
    expect(start.code, start.out).toBe(0);
    expect(start.out).toContain('Hello nuvola 0');
  });

  it("runs the app's own guest test (node --test with testGuest)", async () => {
    const tests = await run(['--test', 'test/hello.test.ts'], app);
    expect(tests.code, tests.out).toBe(0);
    expect(tests.out).toMatch(/pass 1/);
  });

  it('refuses a folder that is not empty', async () => {
    const again = await run([cli, 'init', app], dir);
    expect(again.code).toBe(2);
    expect(again.out).toContain('is not empty');
  });
});
