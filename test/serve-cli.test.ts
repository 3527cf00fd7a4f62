// `nuvola serve` and `nuvola dev` as a user runs them: child processes on loopback, called with
// fetch. dev swaps each rebuild in without failing a call, and keeps serving the last good
// version when a change does not compile.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { copyFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { guestPath } from './helpers.js';

const cli = new URL('../dist/runtime/cli/main.js', import.meta.url).pathname;
const run = promisify(execFile);

let dir: string;
const children: ChildProcess[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'nuvola-serve-cli-'));
});
afterAll(async () => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  await rm(dir, { recursive: true, force: true });
});

/** Starts the CLI; resolves with the child, its stderr so far (live) and the URL it printed. */
async function start(args: string[]): Promise<{ child: ChildProcess; err: () => string; url: string }> {
  const child = spawn(process.execPath, [cli, ...args], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    const check = (): void => {
      const m = /listening on (https?:\/\/[^\s,]+)/.exec(err);
      if (m !== null) resolve(m[1]!);
    };
    child.stderr!.on('data', check);
    child.on('exit', (code) => reject(new Error(`exited ${code}: ${err}`)));
  });
  return { child, err: () => err, url };
}

async function call(url: string, name: string, body: string): Promise<{ status: number; text: string }> {
  const res = await fetch(`${url}/functions/${name}/invoke`, { method: 'POST', body });
  return { status: res.status, text: await res.text() };
}

function stopped(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) resolve(child.exitCode);
    child.on('exit', (code) => resolve(code));
    child.kill('SIGTERM');
  });
}

describe('nuvola serve', () => {
  it('--functions registers a folder at start; functions are called over HTTP; SIGTERM stops it cleanly', async () => {
    const fns = join(dir, 'fns');
    await run('mkdir', ['-p', fns]);
    await copyFile(guestPath('core_echo'), join(fns, 'echo.wasm'));
    await copyFile(guestPath('chain_say'), join(fns, 'say.wasm'));
    await writeFile(join(fns, 'say.json'), JSON.stringify({ timeoutMs: 777 }));
    const { child, err, url } = await start([
      'serve',
      '--port',
      '0',
      '--functions',
      fns,
      '--token',
      'cli-token-0123456789',
      '--public-invoke',
    ]);
    expect(err()).toContain('2 functions');
    expect(await call(url, 'echo', 'abc')).toEqual({ status: 200, text: 'cba' });
    expect(((await (await fetch(`${url}/functions/say`)).json()) as { timeoutMs: number }).timeoutMs).toBe(777);
    expect((await fetch(`${url}/functions/say`, { method: 'DELETE' })).status).toBe(401);
    expect(await stopped(child)).toBe(0);
  });

  it('refuses a bad cron string or trigger file with its code, exit 2', async () => {
    const cron = await run(process.execPath, [cli, 'serve', '--port', '0', '--cron', 'every day f']).catch(
      (e: { code: number; stderr: string }) => e,
    );
    expect(cron).toMatchObject({ code: 2 });
    expect((cron as { stderr: string }).stderr).toContain('E_INVALID_TRIGGER');
    await writeFile(join(dir, 'triggers.json'), JSON.stringify({ streams: [{ stream: 's', function: 'f' }], cron: 'x' }));
    const file = await run(process.execPath, [cli, 'serve', '--port', '0', '--triggers', join(dir, 'triggers.json')]).catch(
      (e: { code: number; stderr: string }) => e,
    );
    expect(file).toMatchObject({ code: 2 });
    expect((file as { stderr: string }).stderr).toContain('E_INVALID_TRIGGER');
  });
});

describe('nuvola dev', () => {
  const version = (v: string): string =>
    `import { outputString } from "nuvola";\nexport function main(): i32 { outputString("${v}"); return 0; }\n`;

  it('serves a guest, swaps each rebuild in without failing a call, and keeps the old one when a change does not compile', async () => {
    const guest = join(dir, 'live.ts');
    await writeFile(guest, version('v1'));
    const { child, err, url } = await start(['dev', 'live.ts', '--port', '0']);
    expect(await call(url, 'live', '')).toEqual({ status: 200, text: 'v1' });

    // Calls all along, one after another; none may fail.
    const seen: { status: number; text: string }[] = [];
    let stop = false;
    const load = (async () => {
      while (!stop) seen.push(await call(url, 'live', ''));
    })();
    await writeFile(guest, version('v2'));
    while (!seen.some((r) => r.text === 'v2')) await new Promise((r) => setTimeout(r, 20));
    await writeFile(guest, 'export function main(): i32 { return notDefinedAnywhere; }\n');
    while (!err().includes('still serving v2')) await new Promise((r) => setTimeout(r, 20));
    stop = true;
    await load;
    expect(err()).toContain('E_BUILD_FAILED');
    expect(seen.every((r) => r.status === 200)).toBe(true);
    expect(new Set(seen.map((r) => r.text))).toEqual(new Set(['v1', 'v2']));
    // v2 from the first call that saw it on.
    expect(seen.slice(seen.findIndex((r) => r.text === 'v2')).every((r) => r.text === 'v2')).toBe(true);
    expect(await call(url, 'live', '')).toEqual({ status: 200, text: 'v2' });
    expect(await stopped(child)).toBe(0);
  }, 120_000);
});
