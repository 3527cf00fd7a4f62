// WebAssembly components: built here with jco's bundled wasm-tools (bench/components.ts),
// transpiled by jco at register, run on the workers with nuvola's snapshots and limits.
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode, NuvolaError } from 'nuvola';
import { buildComponent, ECHO_COMPONENT_WAT } from '../bench/components.js';
import { FUNCTION_WORLD } from '../runtime/component.js';
import { closedAfterEach, guestBytes, runScript, text } from './helpers.js';

const runtime = closedAfterEach();
const cacheDir = mkdtempSync(join(tmpdir(), 'nuvola-components-'));
afterAll(() => rmSync(cacheDir, { recursive: true, force: true }));

let echo: Uint8Array;
beforeAll(async () => {
  echo = await buildComponent(ECHO_COMPONENT_WAT);
});

async function failure(promise: Promise<unknown>): Promise<NuvolaError> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(NuvolaError);
    return err as NuvolaError;
  }
  throw new Error('expected a failure');
}

/** A component whose `run` takes and returns a string: not nuvola's world. */
const STRING_WORLD = `package test:other@0.1.0;

world other {
  export run: func(input: string) -> string;
}`;
const STRING_WAT = `(module
  (memory (export "memory") 1)
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) (i32.const 1024))
  (func (export "run") (param i32 i32) (result i32)
    (i32.store (i32.const 16) (local.get 0))
    (i32.store (i32.const 20) (local.get 1))
    (i32.const 16))
  (func (export "cabi_post_run") (param i32))
)`;

/** nuvola's `run`, but importing a host function nuvola does not provide. */
const EXTRA_IMPORT_WORLD = `package test:extra@0.1.0;

interface clock {
  now: func() -> u64;
}

world extra {
  import clock;
  export run: func(input: list<u8>) -> result<list<u8>, string>;
}`;
const EXTRA_IMPORT_WAT = `(module
  (import "test:extra/clock@0.1.0" "now" (func $now (result i64)))
  (memory (export "memory") 1)
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) (i32.const 1024))
  (func (export "run") (param i32 i32) (result i32)
    (drop (call $now))
    (i32.store8 (i32.const 16) (i32.const 0))
    (i32.store (i32.const 20) (local.get 0))
    (i32.store (i32.const 24) (local.get 1))
    (i32.const 16))
  (func (export "cabi_post_run") (param i32))
)`;

describe('the function world', () => {
  it('wit/nuvola-function.wit is the world the runtime checks against (less its comments)', () => {
    const shipped = readFileSync(new URL('../wit/nuvola-function.wit', import.meta.url), 'utf8');
    const code = shipped
      .split('\n')
      .filter((line) => !line.trim().startsWith('//'))
      .join('\n')
      .trim();
    expect(code).toBe(FUNCTION_WORLD);
  });

  it('nuvola run runs a component file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nuvola-component-cli-'));
    try {
      const path = join(dir, 'echo.wasm');
      writeFileSync(path, echo);
      const { execFile } = await import('node:child_process');
      const root = new URL('../', import.meta.url).pathname;
      const run = (input: string): Promise<{ stdout: string; code: number }> =>
        new Promise((resolve) => {
          execFile(process.execPath, ['dist/runtime/cli/main.js', 'run', path, '--input', input], { cwd: root }, (err, stdout) =>
            resolve({ stdout, code: err ? ((err as { code?: number }).code ?? 1) : 0 }),
          );
        });
      expect(await run('from the command line')).toEqual({ stdout: 'from the command line', code: 0 });
      expect(await run('')).toEqual({ stdout: 'empty input', code: 1 });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('components', () => {
  it('run echoes, detected from the header, from many callers at once', async () => {
    const { rt } = await runtime({ componentCacheDir: cacheDir });
    await rt.register('echo', echo);
    expect(rt.describe('echo').abi).toBe('component');
    const inputs = Array.from({ length: 40 }, (_, i) => `message ${i} ${'x'.repeat(i * 100)}`);
    const outs = await Promise.all(inputs.map((input) => rt.invoke('echo', input)));
    expect(outs.map((o) => text(o.output))).toEqual(inputs);
    expect(outs.every((o) => o.returnCode === 0)).toBe(true);
    const big = new Uint8Array(1 << 20).map((_, i) => i & 0xff);
    expect(Buffer.from((await rt.invoke('echo', big)).output).equals(Buffer.from(big))).toBe(true);
  });

  it('every call starts from the snapshot (memory and globals)', async () => {
    const { rt } = await runtime({ workers: 1 });
    await rt.register('echo', echo);
    await rt.register('kept', echo, { reuse: 'keep' });
    const counts = [];
    for (let i = 0; i < 5; i++) counts.push(text((await rt.invoke('echo', 'count')).output));
    expect(counts).toEqual(['1', '1', '1', '1', '1']);
    // With reuse: 'keep' the same warm instance counts on: the reset above is real.
    const kept = [];
    for (let i = 0; i < 3; i++) kept.push(Number(text((await rt.invoke('kept', 'count')).output)));
    expect(kept[2]! - kept[0]!).toBe(2);
  });

  it("err(message) is return code 1 with the message as output; log reaches the function's log", async () => {
    const { rt, logs } = await runtime();
    await rt.register('echo', echo);
    const empty = await rt.invoke('echo', '');
    expect(empty.returnCode).toBe(1);
    expect(text(empty.output)).toBe('empty input');
    await rt.invoke('echo', '#hello log');
    expect(logs).toContainEqual(expect.objectContaining({ function: 'echo', message: '#hello log' }));
  });

  it('a trap fails the call with E_GUEST_TRAP and the function keeps serving', async () => {
    const { rt } = await runtime({ workers: 1 });
    await rt.register('echo', echo);
    const err = await failure(rt.invoke('echo', '!boom'));
    expect(err.code).toBe(ErrorCode.GUEST_TRAP);
    expect(err.message).toContain('unreachable');
    const after = await Promise.all(['a', 'b', 'count'].map((s) => rt.invoke('echo', s)));
    expect(after.map((o) => text(o.output))).toEqual(['a', 'b', '1']);
  });

  it('limits apply: output size, memory pages', async () => {
    const { rt } = await runtime({ maxOutputBytes: 1000 });
    await rt.register('echo', echo, { memoryLimitPages: 4 });
    expect((await failure(rt.invoke('echo', 'y'.repeat(2000)))).code).toBe(ErrorCode.OUTPUT_TOO_LARGE);
    // 300 KB of input needs more than 4 pages: the guest's memory.grow is refused, it traps.
    expect((await failure(rt.invoke('echo', new Uint8Array(300_000).fill(1)))).code).toBe(ErrorCode.GUEST_TRAP);
    expect(text((await rt.invoke('echo', 'fine')).output)).toBe('fine');
  });

  it('a world that does not match fails with E_COMPONENT_WORLD listing what was expected', async () => {
    const { rt } = await runtime({ componentCacheDir: cacheDir });
    const strings = await failure(rt.register('strings', await buildComponent(STRING_WAT, STRING_WORLD, 'other')));
    expect(strings.code).toBe(ErrorCode.COMPONENT_WORLD);
    expect(strings.message).toContain('export run: func(input: list<u8>) -> result<list<u8>, string>;');
    expect(strings.message).toContain('export run: func(input: string) -> string;');
    const extra = await failure(rt.register('extra', await buildComponent(EXTRA_IMPORT_WAT, EXTRA_IMPORT_WORLD, 'extra')));
    expect(extra.code).toBe(ErrorCode.COMPONENT_WORLD);
    expect(extra.details['imports']).toContain('test:extra/clock');
    expect(rt.functions()).toEqual([]);
  });

  it('bad bytes and a mismatched abi get clear errors', async () => {
    const { rt } = await runtime();
    const truncated = echo.slice(0, echo.byteLength - 10);
    expect((await failure(rt.register('cut', truncated))).code).toBe(ErrorCode.INVALID_MODULE);
    const asCore = await failure(rt.register('x', echo, { abi: 'nuvola' }));
    expect(asCore.code).toBe(ErrorCode.INVALID_MODULE);
    expect(asCore.message).toContain("abi: 'component'");
    expect((await failure(rt.register('y', guestBytes('core_echo'), { abi: 'component' }))).message).toContain('not a component');
  });

  it('transpiled output is cached by content hash, on disk across runtimes', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nuvola-components-cache-'));
    try {
      const first = await runtime({ componentCacheDir: dir });
      await first.rt.register('a', echo);
      const entries = readdirSync(dir);
      expect(entries).toHaveLength(1);
      expect(entries[0]).toMatch(/^[0-9a-f]{64}$/);
      expect(readdirSync(join(dir, entries[0]!)).sort()).toContain('glue.js');
      await first.rt.register('b', echo);
      expect(readdirSync(dir)).toHaveLength(1);
      // A fresh process (no in-memory cache) uses the disk entry: tamper with its glue to see.
      const glue = join(dir, entries[0]!, 'glue.js');
      const original = readFileSync(glue, 'utf8');
      expect(original.endsWith('\nreturn instantiate;')).toBe(true);
      writeFileSync(
        glue,
        original.replace(
          /\nreturn instantiate;$/,
          "\nreturn (...a) => { const api = instantiate(...a); return { run: (i) => new TextEncoder().encode('from disk: ' + new TextDecoder().decode(api.run(i))) }; };",
        ),
      );
      const script = (cacheDir: string): string => `
        import { createRuntime } from 'nuvola';
        import { readFileSync } from 'node:fs';
        const rt = await createRuntime({ workers: 1, componentCacheDir: ${JSON.stringify(cacheDir)}, logger: () => {} });
        await rt.register('c', readFileSync(${JSON.stringify(join(dir, 'echo.component.wasm'))}));
        process.stdout.write(new TextDecoder().decode((await rt.invoke('c', 'hi')).output));
        await rt.close();`;
      writeFileSync(join(dir, 'echo.component.wasm'), echo);
      expect((await runScript(script(dir))).stdout).toBe('from disk: hi');
      // A link to the directory is not trusted (whoever made it chose where it points).
      symlinkSync(dir, `${dir}-link`);
      expect((await runScript(script(`${dir}-link`))).stdout).toBe('hi');
      // A directory others may write to is not trusted: the same tampered entry is ignored.
      chmodSync(dir, 0o777);
      expect((await runScript(script(dir))).stdout).toBe('hi');
    } finally {
      rmSync(`${dir}-link`, { force: true });
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('examples/08-wasi-and-components', () => {
  it('runs: a WASI word count, a component echo and its err, a component of another world refused', async () => {
    const { wasiAndComponentsExample } = await import('../examples/08-wasi-and-components/main.js');
    const lines: string[] = [];
    await wasiAndComponentsExample((line) => lines.push(line));
    expect(lines[0]).toContain('WASI word count (abi wasi): "2 9 44 in:2"');
    expect(lines[1]).toContain('(abi component)');
    expect(lines[2]).toBe('  run("hello, component") → "hello, component"; run("") → return code 1, "empty input"');
    expect(lines[3]).toBe('  a component of another world: E_COMPONENT_WORLD');
  });
});
