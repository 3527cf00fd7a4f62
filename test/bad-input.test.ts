// Every bad input of the runtime core gets a typed error with a stable code, and the runtime
// keeps serving: after each case, a healthy function still answers.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GuestError, LimitError, ModuleError, NuvolaError, RegistryError, type Runtime } from 'nuvola';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { guestBytes, guestPath, runtimeWithLogs, text } from './helpers.js';

describe('bad input', () => {
  let rt: Runtime;

  beforeAll(async () => {
    ({ rt } = await runtimeWithLogs({ workers: 2, maxInputBytes: 1024, maxOutputBytes: 1024 }));
    await rt.register('hello', guestBytes('core_hello'));
  });
  afterAll(() => rt.close());

  async function stillServes(): Promise<void> {
    const results = await Promise.all([0, 1, 2, 3].map((i) => rt.invoke('hello', `ok ${i}`)));
    results.forEach((r, i) => expect(text(r.output)).toBe(`Hello ok ${i}`));
  }

  async function rejection(promise: Promise<unknown>): Promise<NuvolaError> {
    const err = await promise.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(NuvolaError);
    return err as NuvolaError;
  }

  describe('at register', () => {
    it('rejects bytes that are not Wasm', async () => {
      const err = await rejection(rt.register('text', new TextEncoder().encode('this is not wasm')));
      expect(err).toBeInstanceOf(ModuleError);
      expect(err.code).toBe('E_INVALID_MODULE');
      expect(err.message).toMatch(/not a WebAssembly module/);
      expect(rt.functions()).not.toContain('text');
      await stillServes();
    });

    it('rejects a malformed module with the engine reason', async () => {
      const valid = guestBytes('core_hello');
      const truncated = valid.slice(0, Math.floor(valid.length / 2));
      const err = await rejection(rt.register('truncated', truncated));
      expect(err.code).toBe('E_INVALID_MODULE');
      expect(err.message).toMatch(/malformed/);
      expect(typeof err.details['reason']).toBe('string');
      await stillServes();
    });

    it('rejects a module importing what the ABI lacks and lists the names', async () => {
      const err = await rejection(rt.register('importer', guestBytes('core_unknown_import')));
      expect(err.code).toBe('E_UNKNOWN_IMPORT');
      expect(err.details['imports']).toEqual(['nuvola:io.teleport (function)', 'nuvola:secrets.read_key (function)']);
      expect(err.message).toContain('nuvola:secrets.read_key');
      await stillServes();
    });

    it('rejects a module without main', async () => {
      const err = await rejection(rt.register('nomain', guestBytes('core_no_main')));
      expect(err.code).toBe('E_MISSING_EXPORT');
      expect(err.details['export']).toBe('main');
      await stillServes();
    });

    it.each([
      ['core_main_void', 'main', '() -> ()'],
      ['core_main_i64', 'main', '() -> (i64)'],
      ['core_init_i32', 'init', '() -> (i32)'],
    ])('rejects %s: an entry point with the wrong signature', async (guest, exportName, signature) => {
      const err = await rejection(rt.register(guest, guestBytes(guest)));
      expect(err.code).toBe('E_MISSING_EXPORT');
      expect(err.details).toMatchObject({ export: exportName, signature });
      await stillServes();
    });

    it('rejects a module whose initial memory is above memoryLimitPages', async () => {
      const err = await rejection(rt.register('bigdata', guestBytes('core_big_data'), { memoryLimitPages: 2 }));
      expect(err).toBeInstanceOf(LimitError);
      expect(err.code).toBe('E_MEMORY_LIMIT');
      expect(err.details['initialPages']).toBeGreaterThan(2);
      await rt.register('bigdata', guestBytes('core_big_data'), { memoryLimitPages: 16 });
      expect((await rt.invoke('bigdata')).returnCode).toBe(0);
    });

    it('rejects a second registration under the same name, keeping the first', async () => {
      const err = await rejection(rt.register('hello', guestBytes('core_echo')));
      expect(err).toBeInstanceOf(RegistryError);
      expect(err.code).toBe('E_ALREADY_REGISTERED');
      await stillServes();
    });

    it('rejects a module whose start-up code traps', async () => {
      const err = await rejection(rt.register('starttrap', guestBytes('core_start_trap')));
      expect(err.code).toBe('E_INSTANTIATE_FAILED');
      expect(rt.functions()).not.toContain('starttrap');
      await stillServes();
    });

    it('rejects a path that does not exist', async () => {
      const err = await rejection(rt.register('missing', '/nonexistent/guest.wasm'));
      expect(err.code).toBe('E_INVALID_MODULE');
      expect(err.message).toContain('/nonexistent/guest.wasm');
    });

    it('refuses a path that is a FIFO at once, without waiting for a writer', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'nuvola-fifo-'));
      const fifo = join(dir, 'guest.wasm');
      execFileSync('mkfifo', [fifo]);
      try {
        const err = await rejection(rt.register('fifo', fifo));
        expect(err.code).toBe('E_INVALID_MODULE');
        expect(err.details).toMatchObject({ path: fifo, reason: 'not a regular file' });
        expect(err.message).toMatch(/not a regular file/);
      } finally {
        rmSync(dir, { recursive: true });
      }
      await stillServes();
    });

    it('refuses a device path, and reads no more of a file than maxModuleBytes allow', async () => {
      const err = await rejection(rt.register('zero', '/dev/zero'));
      expect(err.code).toBe('E_INVALID_MODULE');
      expect(err.details['reason']).toBe('not a regular file');
      const { rt: tight } = await runtimeWithLogs({ workers: 1, maxModuleBytes: 100 });
      try {
        const big = await rejection(tight.register('big', guestPath('core_hello')));
        expect(big.code).toBe('E_MODULE_TOO_LARGE');
        expect(big.details).toMatchObject({ function: 'big', maxModuleBytes: 100 });
      } finally {
        await tight.close();
      }
      await stillServes();
    });
  });

  describe('at invoke', () => {
    it('rejects an unknown function name', async () => {
      const err = await rejection(rt.invoke('nope', 'x'));
      expect(err).toBeInstanceOf(RegistryError);
      expect(err.code).toBe('E_UNKNOWN_FUNCTION');
      await stillServes();
    });

    it('rejects an input over maxInputBytes before sending it anywhere', async () => {
      const err = await rejection(rt.invoke('hello', new Uint8Array(1025)));
      expect(err).toBeInstanceOf(LimitError);
      expect(err.code).toBe('E_INPUT_TOO_LARGE');
      expect(err.details).toMatchObject({ bytes: 1025, maxInputBytes: 1024 });
      await stillServes();
    });

    it('sends exactly the bytes of an input that is a view into a larger buffer', async () => {
      await rt.register('echo', guestBytes('core_echo'));
      const big = new Uint8Array(1 << 20).map((_, i) => i & 0xff);
      const result = await rt.invoke('echo', big.subarray(10, 14));
      expect([...result.output]).toEqual([13, 12, 11, 10]);
      expect(result.returnCode).toBe(4);
    });

    it('fails a guest producing more than maxOutputBytes', async () => {
      await rt.register('bigout', guestBytes('core_big_output'));
      const err = await rejection(rt.invoke('bigout'));
      expect(err.code).toBe('E_OUTPUT_TOO_LARGE');
      await stillServes();
    });
  });

  describe('guest traps', () => {
    beforeAll(async () => {
      await rt.register('unreachable', guestBytes('core_unreachable'));
      await rt.register('oob', guestBytes('core_oob'));
      await rt.register('abort', guestBytes('core_abort'));
      await rt.register('overflow', guestBytes('core_stack_overflow'));
      await rt.register('badptr', guestBytes('core_bad_pointer'));
    });

    it('reports unreachable as a guest trap', async () => {
      const err = await rejection(rt.invoke('unreachable'));
      expect(err).toBeInstanceOf(GuestError);
      expect(err.code).toBe('E_GUEST_TRAP');
      expect(err.details['trap']).toMatch(/unreachable/);
      await stillServes();
    });

    it('reports an out-of-bounds memory access as a guest trap', async () => {
      const err = await rejection(rt.invoke('oob'));
      expect(err.code).toBe('E_GUEST_TRAP');
      expect(err.details['trap']).toMatch(/out of bounds/);
      await stillServes();
    });

    it("reports AssemblyScript's abort with its message, file and line", async () => {
      const err = await rejection(rt.invoke('abort', 'wrong'));
      expect(err.code).toBe('E_GUEST_ABORT');
      expect(err.details).toMatchObject({ message: "expected input 'fine'", line: 4 });
      expect(err.details['file']).toMatch(/core_abort\.ts$/);
      expect(err.message).toContain("expected input 'fine'");
      const ok = await rt.invoke('abort', 'fine');
      expect(ok.returnCode).toBe(0);
    });

    it('reports runaway recursion as a guest trap', async () => {
      const err = await rejection(rt.invoke('overflow'));
      expect(err.code).toBe('E_GUEST_TRAP');
      expect(err.details['trap']).toBe('call stack exhausted');
      await stillServes();
    });

    it.each(['past-end', 'huge-pointer', 'negative-length', 'write-past-end'])(
      'traps a guest that hands a host import an out-of-bounds range (%s)',
      async (mode) => {
        const err = await rejection(rt.invoke('badptr', mode));
        expect(err.code).toBe('E_GUEST_POINTER');
        expect(err.message).toMatch(/outside its memory/);
        await stillServes();
      },
    );

    it('resets a trapped instance to its snapshot and reuses it; with reuse keep, discards it', async () => {
      const { rt: one } = await runtimeWithLogs({ workers: 1 });
      try {
        await one.register('abort', guestBytes('core_abort'));
        await one.register('abortKeep', guestBytes('core_abort'), { reuse: 'keep' });
        for (const fn of ['abort', 'abortKeep']) {
          expect((await one.invoke(fn, 'fine')).cold).toBe(false);
          await rejection(one.invoke(fn, 'wrong'));
          const next = await one.invoke(fn, 'fine');
          expect(next.returnCode).toBe(0);
          // A reset undoes whatever the failed call did; an instance that keeps state may be
          // left inconsistent by a trap, so it is replaced.
          expect(next.cold).toBe(fn === 'abortKeep');
        }
        expect(one.stats().workerRestarts).toBe(0);
      } finally {
        await one.close();
      }
    });
  });

  describe('logs', () => {
    it('caps what one invocation may log at maxLogBytes and says so', async () => {
      const { rt: small, logs } = await runtimeWithLogs({ workers: 1, maxLogBytes: 4096 });
      try {
        await small.register('flood', guestBytes('core_log_flood'));
        await small.invoke('flood');
        await small.invoke('flood');
        const lines = logs.filter((l) => l.function === 'flood');
        // Per invocation: four full lines, then one truncated line with the marker.
        expect(lines).toHaveLength(10);
        expect(lines.filter((l) => l.message.includes('[log truncated: maxLogBytes reached]'))).toHaveLength(2);
        expect(lines.reduce((n, l) => n + l.message.length, 0)).toBeLessThan(2 * 4096 + 200);
      } finally {
        await small.close();
      }
    });

    it("charges AssemblyScript's trace() to the same budget", async () => {
      const { rt: small, logs } = await runtimeWithLogs({ workers: 1, maxLogBytes: 4096 });
      try {
        await small.register('trace', guestBytes('core_trace_flood'));
        await small.invoke('trace');
        await small.invoke('trace');
        const lines = logs.filter((l) => l.function === 'trace');
        // Per invocation: four full lines ('trace: ' + 1000 characters + ' 1.5, 2'), then one cut.
        expect(lines).toHaveLength(10);
        expect(lines[0]!.message).toBe(`trace: ${'y'.repeat(1000)} 1.5, 2`);
        expect(lines.filter((l) => l.message.endsWith('… [log truncated: maxLogBytes reached]'))).toHaveLength(2);
        const bytes = lines.reduce((n, l) => n + new TextEncoder().encode(l.message).byteLength, 0);
        expect(bytes).toBeLessThan(2 * 4096 + 200);
      } finally {
        await small.close();
      }
    });
  });
});
