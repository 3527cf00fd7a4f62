// The WASI sandbox against escapes that the fd-relative design closes: a directory
// descriptor is the directory it was opened as (not a path that can be swapped for a link),
// special files never block a worker, and descriptors are bounded for the whole process as well
// as per call.
import { closeSync, constants, existsSync, mkdirSync, mkdtempSync, openSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { closedAfterEach, guestBytes, guestPath, runScript, text, openHere } from './helpers.js';

const runtime = closedAfterEach();

const area = mkdtempSync(join(tmpdir(), 'nuvola-wasi-hard-'));
const outside = join(area, 'outside');
mkdirSync(outside);
writeFileSync(join(outside, 'secret.txt'), 'secret\n');
afterAll(() => rmSync(area, { recursive: true, force: true }));

const lines = (out: Uint8Array): string[] => text(out).trim().split('\n');

describe('WASI sandbox hardening', () => {
  it('a directory descriptor stays the directory it was opened as: a link renamed into its place leads nowhere', async () => {
    const dir = join(area, 'swap');
    mkdirSync(join(dir, 'sub'), { recursive: true });
    writeFileSync(join(dir, 'sub', 'inside.txt'), 'inside\n');
    symlinkSync(outside, join(dir, 'lnk'));
    const { rt } = await runtime();
    await rt.register('raw', guestBytes('wasi_raw'), { wasi: { dirs: [{ host: dir, guest: '/w', writable: true }] } });
    // No race needed: the guest swaps the directory it holds open for a link to outside.
    const out = await rt.invoke(
      'raw',
      ['opendir sub', 'rename sub sub2', 'rename lnk sub', 'list', 'openat secret.txt', 'openat inside.txt'].join('\n'),
    );
    expect(lines(out.output)).toEqual([
      'opendir sub errno 0',
      'rename sub sub2 errno 0',
      'rename lnk sub errno 0',
      'list inside.txt',
      'openat secret.txt errno 44',
      'openat inside.txt errno 0',
    ]);
  });

  it('a FIFO in a grant is refused at once, not waited on (open is non-blocking, then only files and directories)', async () => {
    const dir = join(area, 'fifo');
    mkdirSync(dir);
    const fifo = join(dir, 'pipe');
    execFileSync('mkfifo', [fifo]);
    const { rt, logs } = await runtime({ workers: 1 });
    await rt.register('raw', guestBytes('wasi_raw'), { timeoutMs: 5000, wasi: { dirs: [{ host: dir, guest: '/f' }] } });
    try {
      expect(lines((await rt.invoke('raw', 'open pipe\nrandom')).output)).toEqual(['open pipe errno 2', 'random ok']);
    } finally {
      // Without the fix the worker is blocked in open(2): a writer lets it go.
      try {
        closeSync(openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK));
      } catch {
        // No reader: nothing blocked.
      }
    }
    expect(rt.stats().workerRestarts).toBe(0);
    expect(logs.some((l) => l.message.includes("refused to open 'pipe': only regular files and directories"))).toBe(true);
  });

  it('descriptors held by suspended calls are bounded for the whole process: the call past the budget gets ENFILE', async () => {
    const dir = join(area, 'budget');
    mkdirSync(dir);
    const data = join(dir, 'data.txt');
    writeFileSync(data, 'x');
    const { rt } = await runtime({ workers: 2 });
    await rt.register('hold', guestBytes('wasi_hold'), { timeoutMs: 25_000, wasi: { dirs: [{ host: dir, guest: '/b', writable: true }] } });
    // Eighteen calls on two workers each want 256 descriptors (the grant and 255 files): wait
    // until the process's 4096 are all taken, while every call sleeps holding what it got.
    const calls = Array.from({ length: 18 }, (_, i) => rt.invoke('hold', String(i)));
    for (const call of calls) call.catch(() => undefined); // awaited below; a failure here is not unhandled
    const held = (): number => openHere(data) + openHere(dir);
    while (held() < 4096) await new Promise((r) => setTimeout(r, 20));
    expect(held()).toBe(4096);
    writeFileSync(join(dir, 'release'), '');
    const results = (await Promise.all(calls)).map((out) => text(out.output).trim().split(' ').map(Number) as [number, number]);
    expect(results.reduce((n, [opened]) => n + opened, 0)).toBeLessThanOrEqual(4096);
    for (const [opened, errno] of results) {
      expect(opened).toBeLessThanOrEqual(255);
      expect([33, 41]).toContain(errno); // EMFILE (the call's 256) or ENFILE (the process's 4096)
    }
    expect(results.some(([, errno]) => errno === 41)).toBe(true);
    // All given back: a new call gets its full 255 again.
    expect(held()).toBe(0);
    rmSync(join(dir, 'release'));
    const again = rt.invoke('hold', 'again');
    while (!existsSync(join(dir, 'ready-again'))) await new Promise((r) => setTimeout(r, 20));
    writeFileSync(join(dir, 'release'), '');
    expect(text((await again).output)).toBe('255 33\n');
  });
});

describe('WASI grants are Linux only', () => {
  it('elsewhere, register() with dirs fails with E_INVALID_OPTION before anything runs', async () => {
    const script = `
      Object.defineProperty(process, 'platform', { value: 'darwin' });
      const { createRuntime } = await import('nuvola');
      const { readFileSync } = await import('node:fs');
      const rt = await createRuntime({ workers: 1 });
      try {
        await rt.register('raw', readFileSync(${JSON.stringify(guestPath('wasi_raw'))}), { wasi: { dirs: [{ host: ${JSON.stringify(area)} }] } });
        console.log('registered');
      } catch (err) {
        console.log(err.code, err.message);
      } finally {
        await rt.close();
      }`;
    const { stdout } = await runScript(script);
    expect(stdout).toMatch(/^E_INVALID_OPTION option options\.wasi\.dirs: granting directories to a WASI guest needs Linux/);
  });
});
