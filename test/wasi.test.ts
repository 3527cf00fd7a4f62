// WASI preview 1 guests: AssemblyScript commands built with @assemblyscript/wasi-shim and a C
// command built with clang and wasi-libc (test/setup/build-guests.ts), run as functions.
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from '@bytecodealliance/jco-transpile/wasm-tools';
import { buildGuest, ErrorCode, NuvolaError } from 'nuvola';
import { closedAfterEach, guestBytes, text, openHere } from './helpers.js';

const runtime = closedAfterEach();

const area = mkdtempSync(join(tmpdir(), 'nuvola-wasi-'));
const granted = join(area, 'granted');
const outside = join(area, 'outside');
mkdirSync(join(granted, 'sub'), { recursive: true });
mkdirSync(outside);
writeFileSync(join(granted, 'hello.txt'), 'hello from the granted directory\n');
writeFileSync(join(outside, 'secret.txt'), 'secret\n');
symlinkSync(join(outside, 'secret.txt'), join(granted, 'link-out'));
afterAll(() => rmSync(area, { recursive: true, force: true }));

async function failure(promise: Promise<unknown>): Promise<NuvolaError> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(NuvolaError);
    return err as NuvolaError;
  }
  throw new Error('expected a failure');
}

describe('WASI commands in AssemblyScript (wasi-shim)', () => {
  it('echo: stdin is the input, stdout the output, detected as a WASI command', async () => {
    const { rt } = await runtime();
    await rt.register('echo', guestBytes('wasi_echo'));
    expect(rt.describe('echo').abi).toBe('wasi');
    const big = new Uint8Array(300_000).map((_, i) => (i * 7) & 0xff);
    const results = await Promise.all([rt.invoke('echo', 'hello wasi'), rt.invoke('echo', big), rt.invoke('echo', '')]);
    expect(text(results[0]!.output)).toBe('hello wasi');
    expect(results[0]!.returnCode).toBe(0);
    expect(Buffer.from(results[1]!.output).equals(Buffer.from(big))).toBe(true);
    expect(results[2]!.output.byteLength).toBe(0);
  });

  it('word count over stdin, with an argument', async () => {
    const { rt } = await runtime();
    await rt.register('wc', guestBytes('wasi_wordcount'));
    await rt.register('wcTop', guestBytes('wasi_wordcount'), { wasi: { args: ['--top'] } });
    const input = 'the cat and the hat\nsat on the mat\n\n  twice  the end';
    const words = input.split(/\s+/).filter((w) => w !== '');
    const lines = input.split('\n').length - 1;
    expect(text((await rt.invoke('wc', input)).output)).toBe(`${lines} ${words.length} ${input.length}\n`);
    const the = words.filter((w) => w === 'the').length;
    expect(the).toBeGreaterThan(1);
    expect(text((await rt.invoke('wcTop', input)).output)).toBe(`${lines} ${words.length} ${input.length} the:${the}\n`);
  });

  it('a WASI build leaves later plain builds in the process alone', async () => {
    const wasi = await buildGuest('guest/examples/wasi/echo.ts', { wasi: true });
    const plain = await buildGuest('guest/examples/hello.ts');
    const { rt } = await runtime({ workers: 1 });
    await rt.register('echo', wasi);
    await rt.register('hello', plain);
    expect(rt.describe('echo').abi).toBe('wasi');
    expect(text((await rt.invoke('echo', 'both')).output)).toBe('both');
    expect(text((await rt.invoke('hello', 'x')).output)).toBe('Hello x');
  });

  it('also gets nuvola state through the SDK', async () => {
    const { rt } = await runtime();
    await rt.register('add', guestBytes('wasi_state'), { wasi: { args: ['wasi-total'] } });
    const outs = await Promise.all([1, 2, 3, 4].map((n) => rt.invoke('add', String(n))));
    const totals = outs.map((o) => Number(text(o.output).trim())).sort((a, b) => a - b);
    expect(totals.at(-1)).toBe(10);
    expect(new Set(totals).size).toBe(4);
    await rt.state.pull('wasi-total');
    expect(new Int32Array((await rt.state.read('wasi-total')).slice().buffer)[0]).toBe(10);
  });
});

describe('a WASI command in C (clang + wasi-libc)', () => {
  it('counts stdin, sees its arguments and environment, and starts every call from the snapshot', async () => {
    const { rt } = await runtime();
    await rt.register('wc', guestBytes('wasi_wc_c'), { wasi: { args: ['env', 'GREETING', 'calls'], env: { GREETING: 'hi there' } } });
    const outs = await Promise.all(Array.from({ length: 6 }, () => rt.invoke('wc', 'one two\nthree\n')));
    for (const out of outs) {
      expect(out.returnCode).toBe(0);
      expect(text(out.output)).toBe('2 3 14\nGREETING=hi there\ncalls=1\n');
    }
  });

  it('stderr goes to the log, the exit code is the return code', async () => {
    const { rt, logs } = await runtime();
    await rt.register('exit3', guestBytes('wasi_wc_c'), { wasi: { args: ['exit', '3'] } });
    const out = await rt.invoke('exit3', 'a b c');
    expect(out.returnCode).toBe(3);
    expect(text(out.output)).toBe('0 3 5\n');
    expect(logs).toContainEqual(expect.objectContaining({ function: 'exit3', message: 'exiting with 3' }));
  });

  it('reads a granted directory, read-only unless writable', async () => {
    const { rt, logs } = await runtime();
    const dirs = [{ host: granted, guest: '/data' }];
    await rt.register('cat', guestBytes('wasi_wc_c'), { wasi: { args: ['cat', '/data/hello.txt', 'write', '/data/new.txt'], dirs } });
    const out = text((await rt.invoke('cat', '')).output);
    expect(out).toContain('/data/hello.txt: hello from the granted directory\n');
    expect(out).toContain('/data/new.txt: Read-only file system\n');
    expect(logs.some((l) => l.message.includes('is read-only; grant it with writable: true'))).toBe(true);
    await rt.register('writer', guestBytes('wasi_wc_c'), {
      wasi: { args: ['write', '/data/new.txt'], dirs: [{ host: granted, guest: '/data', writable: true }] },
    });
    expect(text((await rt.invoke('writer', '')).output)).toContain('/data/new.txt: written\n');
    expect(readFileSync(join(granted, 'new.txt'), 'utf8')).toBe('written by wc.wasm\n');
    rmSync(join(granted, 'new.txt'));
  });

  it('cannot read files it was not granted', async () => {
    const { rt } = await runtime();
    const secret = join(outside, 'secret.txt');
    await rt.register('none', guestBytes('wasi_wc_c'), { wasi: { args: ['cat', secret] } });
    expect(text((await rt.invoke('none', '')).output)).toContain(`${secret}: Capabilities insufficient`);
    await rt.register('some', guestBytes('wasi_wc_c'), {
      wasi: {
        args: ['cat', '/data/../outside/secret.txt', 'cat', '/data/link-out', 'cat', secret],
        dirs: [{ host: granted, guest: '/data' }],
      },
    });
    const out = text((await rt.invoke('some', '')).output);
    expect(out).not.toContain('secret\n');
    expect(out).toContain('/data/../outside/secret.txt: Capabilities insufficient');
    expect(out).toContain('/data/link-out: Capabilities insufficient');
  });

  it('stdout beyond maxOutputBytes fails with E_OUTPUT_TOO_LARGE, and the function keeps serving', async () => {
    const { rt } = await runtime({ maxOutputBytes: 1024 * 1024 });
    await rt.register('flood', guestBytes('wasi_wc_c'), { wasi: { args: ['flood', '8'] } });
    await rt.register('ok', guestBytes('wasi_wc_c'));
    const err = await failure(rt.invoke('flood', ''));
    expect(err.code).toBe(ErrorCode.OUTPUT_TOO_LARGE);
    expect(err.message).toMatch(/maxOutputBytes=1048576 bytes to stdout/);
    expect(text((await rt.invoke('ok', 'x')).output)).toBe('0 1 1\n');
  });
});

describe('the host side of the sandbox (raw WASI calls)', () => {
  it('refuses paths out of the grant (.., absolute, symbolic links) and writes to a read-only grant', async () => {
    const { rt, logs } = await runtime();
    await rt.register('raw', guestBytes('wasi_raw'), { wasi: { dirs: [{ host: granted, guest: '/data' }] } });
    const commands = [
      'prestat',
      'open hello.txt',
      'open sub/../hello.txt',
      'open ../outside/secret.txt',
      'open /etc/passwd',
      'open link-out',
      'open missing',
      'create new.txt',
      'clock',
      'random',
    ];
    const out = text((await rt.invoke('raw', commands.join('\n'))).output)
      .trim()
      .split('\n');
    expect(out).toEqual([
      'prestat /data',
      'open hello.txt errno 0',
      'open sub/../hello.txt errno 0',
      'open ../outside/secret.txt errno 76',
      'open /etc/passwd errno 76',
      'open link-out errno 76',
      'open missing errno 44',
      'create new.txt errno 69',
      'clock ok',
      'random ok',
    ]);
    expect(logs.filter((l) => l.message.startsWith("nuvola: refused access to '")).length).toBe(3);
  });

  it('files a call left open are closed, also when it is interrupted at its timeout', async () => {
    const { rt } = await runtime({ workers: 1 });
    await rt.register('raw', guestBytes('wasi_raw'), { timeoutMs: 300, wasi: { dirs: [{ host: granted, guest: '/data' }] } });
    const target = join(granted, 'hello.txt');
    expect(openHere(target)).toBe(0);
    // A call that ends normally closes what it opened.
    expect(text((await rt.invoke('raw', 'open hello.txt')).output)).toBe('open hello.txt errno 0\n');
    expect(openHere(target)).toBe(0);
    expect((await failure(rt.invoke('raw', 'hold hello.txt'))).code).toBe(ErrorCode.TIMEOUT);
    expect(rt.stats()).toMatchObject({ interrupts: 1, workerRestarts: 0 });
    expect(openHere(target)).toBe(0);
    expect(text((await rt.invoke('raw', 'random')).output)).toBe('random ok\n');
  });

  it('removes and renames directory entries, not what links point to, and never the grant itself', async () => {
    const { rt } = await runtime();
    const dir = join(area, 'entries');
    mkdirSync(join(dir, 'sub'), { recursive: true });
    writeFileSync(join(dir, 'a.txt'), 'a');
    symlinkSync(join(outside, 'secret.txt'), join(dir, 'lnk'));
    symlinkSync(outside, join(dir, 'dlnk'));
    await rt.register('raw', guestBytes('wasi_raw'), { wasi: { dirs: [{ host: dir, guest: '/w', writable: true }] } });
    const commands = [
      'unlink .',
      'rmdir .',
      'rmdir sub/..',
      'rename . moved',
      'rename a.txt ..',
      'unlink dlnk/secret.txt',
      'lstat lnk',
      'lstat a.txt',
      'unlink lnk',
      'rename a.txt b.txt',
      'rmdir sub',
      'readdir',
    ];
    const out = text((await rt.invoke('raw', commands.join('\n'))).output)
      .trim()
      .split('\n');
    expect(out).toEqual([
      'unlink . errno 28',
      'rmdir . errno 28',
      'rmdir sub/.. errno 28',
      'rename . moved errno 28',
      'rename a.txt .. errno 28',
      'unlink dlnk/secret.txt errno 76',
      'lstat lnk errno 0 type 7',
      'lstat a.txt errno 0 type 4',
      'unlink lnk errno 0',
      'rename a.txt b.txt errno 0',
      'rmdir sub errno 0',
      // ., .., b.txt, dlnk: each with its inode.
      'readdir 4 entries, 0 without an inode',
    ]);
    // The link went, not the file it pointed to; the grant is still there.
    expect(readFileSync(join(outside, 'secret.txt'), 'utf8')).toBe('secret\n');
    expect(readdirSync(dir).sort()).toEqual(['b.txt', 'dlnk']);
  });

  it('stderr without newlines is logged as one line, cut at maxLogBytes', async () => {
    const { rt, logs } = await runtime({ maxLogBytes: 1000 });
    await rt.register('raw', guestBytes('wasi_raw'));
    await rt.invoke('raw', 'spew 3000\nspew 3000\nrandom');
    const lines = logs.filter((l) => l.function === 'raw').map((l) => l.message);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^x{1000}… \[log truncated: maxLogBytes reached\]$/);
    // The next call has its own budget.
    await rt.invoke('raw', 'spew 10');
    expect(logs.filter((l) => l.function === 'raw').map((l) => l.message)[1]).toBe('x'.repeat(10));
  });

  it('with no grant there is no file system at all', async () => {
    const { rt } = await runtime();
    await rt.register('raw', guestBytes('wasi_raw'));
    expect(text((await rt.invoke('raw', 'prestat\nopen hello.txt')).output)).toBe('prestat errno 8\nopen hello.txt errno 8\n');
  });

  it('a pointer outside its memory traps with E_GUEST_POINTER', async () => {
    const { rt } = await runtime();
    await rt.register('raw', guestBytes('wasi_raw'));
    expect((await failure(rt.invoke('raw', 'badiov'))).code).toBe(ErrorCode.GUEST_POINTER);
    expect(text((await rt.invoke('raw', 'random')).output)).toBe('random ok\n');
  });
});

describe('registration', () => {
  it('checks the abi against the module, and the wasi options', async () => {
    const { rt } = await runtime();
    const missing = await failure(rt.register('sdk', guestBytes('core_echo'), { abi: 'wasi' }));
    expect(missing.code).toBe(ErrorCode.MISSING_EXPORT);
    expect(missing.message).toContain("'_start'");
    expect((await failure(rt.register('c', guestBytes('wasi_wc_c'), { abi: 'nuvola' }))).code).toBe(ErrorCode.MISSING_EXPORT);
    expect((await failure(rt.register('c', guestBytes('wasi_wc_c'), { reuse: 'keep' }))).code).toBe(ErrorCode.INVALID_OPTION);
    const notDir = await failure(rt.register('c', guestBytes('wasi_wc_c'), { wasi: { dirs: [{ host: join(area, 'nope') }] } }));
    expect(notDir.code).toBe(ErrorCode.INVALID_OPTION);
    expect(notDir.details['path']).toBe('options.wasi.dirs[0].host');
    const badEnv = await failure(rt.register('c', guestBytes('wasi_wc_c'), { wasi: { env: { 'A=B': 'x' } } }));
    expect(badEnv.code).toBe(ErrorCode.INVALID_OPTION);
    // Nothing half-registered: the name is free.
    await rt.register('c', guestBytes('wasi_wc_c'), { abi: 'wasi' });
    expect(rt.describe('c').abi).toBe('wasi');
  });

  it('files opened by init() are closed when start-up ends', async () => {
    const { rt } = await runtime({ workers: 1 });
    await rt.register('init', guestBytes('core_wasi_init_open'), { wasi: { dirs: [{ host: granted }] } });
    expect(openHere(join(granted, 'hello.txt'))).toBe(0);
    expect(text((await rt.invoke('init')).output)).toBe('init opened fd 4 errno 0');
  });

  it('start-up that fails gives back what it held, and proc_exit is reported where it happened', async () => {
    const { rt } = await runtime({ workers: 1, maxInstances: 2 });
    // A data segment past the initial memory fails in start-up, before any guest code runs.
    const badSegment = await parse(`(module (memory (export "memory") 1) (data (i32.const 65530) "0123456789")
      (func (export "main") (result i32) i32.const 0))`);
    const exitInStart = await parse(`(module (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
      (memory (export "memory") 1) (func $s i32.const 9 call $exit) (start $s) (func (export "_start")))`);
    const exitInMain = await parse(`(module (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
      (memory (export "memory") 1) (func (export "main") (result i32) i32.const 3 call $exit i32.const 0))`);
    for (let i = 0; i < 3; i++) {
      expect((await failure(rt.register('bad', badSegment))).code).toBe(ErrorCode.INSTANTIATE_FAILED);
      const exited = await failure(rt.register('exit', exitInStart));
      expect(exited.code).toBe(ErrorCode.INSTANTIATE_FAILED);
      expect(exited.message).toContain('called proc_exit(9) during start-up');
    }
    // Six failed start-ups with maxInstances: 2, and instances are still to be had.
    await rt.register('main', exitInMain);
    const inMain = await failure(rt.invoke('main'));
    expect(inMain.code).toBe(ErrorCode.GUEST_TRAP);
    expect(inMain.message).toContain('called proc_exit(3) in a call: only a WASI command');
    await rt.register('echo', guestBytes('core_echo'));
    expect(text((await rt.invoke('echo', 'abc')).output)).toBe('cba');
  });

  it('an SDK guest that imports WASI logs its stdout instead of returning it', async () => {
    const { rt, logs } = await runtime();
    await rt.register('sdk', guestBytes('core_wasi_print'));
    expect(rt.describe('sdk').abi).toBe('nuvola');
    expect(text((await rt.invoke('sdk')).output)).toBe('the output');
    expect(logs.filter((l) => l.function === 'sdk').map((l) => l.message)).toEqual(['to stdout', 'and a partial line']);
  });
});

describe('nuvola run', () => {
  it('runs a WASI command from the command line', async () => {
    const { execFile } = await import('node:child_process');
    const root = new URL('../', import.meta.url).pathname;
    const result = await new Promise<{ stdout: string; code: number }>((resolve) => {
      const child = execFile(
        process.execPath,
        ['dist/runtime/cli/main.js', 'run', join(root, 'test/.build/wasi_wc_c.wasm'), '--input', 'a b\n', '--arg', 'exit', '--arg', '4'],
        { cwd: root },
        (err, stdout) => resolve({ stdout, code: err ? ((err as { code?: number }).code ?? 1) : 0 }),
      );
      child.stdin?.end();
    });
    expect(result.stdout).toBe('1 2 4\n');
    expect(result.code).toBe(4);
  });
});
