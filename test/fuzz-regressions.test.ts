/**
 * What the host-boundary fuzzer (fuzz-boundary.test.ts) found, one test each, driven through
 * the same generated guest with a fixed program.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createRuntime, type Runtime, type RuntimeOptions } from 'nuvola';
import { until } from 'nuvola/testing';
import { encodeProgram, fuzzGuestModule, type Step } from './fuzz/guest-module.js';
import { IMPORTS, REGION, type ImportSig } from './fuzz/signatures.js';
import { guestBytes, type GuestContext } from '../runtime/capabilities/context.js';

const step = (module: string, name: string, args: (number | bigint)[]): Step => ({
  import: IMPORTS.findIndex((i) => i.module === module && i.name === name),
  args,
});

const open: Runtime[] = [];
const dirs: string[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((rt) => rt.close()));
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

async function fuzzGuest(options: RuntimeOptions = {}): Promise<{ rt: Runtime; logs: string[]; dir: string }> {
  // The same guest, a step's host error caught so the next step runs (as a hostile guest would).
  const logs: string[] = [];
  const rt = await createRuntime({ workers: 1, ...options, logger: (e) => logs.push(e.message) });
  open.push(rt);
  const dir = mkdtempSync(join(tmpdir(), 'nuvola-fuzz-'));
  dirs.push(dir);
  await rt.register('fuzz', fuzzGuestModule(), { wasi: { dirs: [{ host: dir, guest: '/data' }] } });
  await rt.register('fuzz_catch', fuzzGuestModule({ catchErrors: true, imports: IMPORTS.filter((i) => i.module !== REGION) }), {
    timeoutMs: 100,
  });
  return { rt, logs, dir };
}

describe('found by the host-boundary fuzzer', () => {
  it('fd_readdir with the cookie -1 (2^64 - 1 as a u64) reads past the end: nothing, not a host TypeError', async () => {
    const { rt } = await fuzzGuest();
    // fd 3 is the granted directory; 40000 the buffer, 50000 where `used` goes, then output it.
    const used = async (cookie: bigint): Promise<number> => {
      const program = [
        step('wasi_snapshot_preview1', 'fd_readdir', [3, 40000, 1000, cookie, 50000]),
        step('nuvola:io', 'output_write', [50000, 4]),
      ];
      const result = await rt.invoke('fuzz', encodeProgram(IMPORTS, program, new Uint8Array(0)));
      expect(result.returnCode).toBe(0);
      return new DataView(result.output.buffer, result.output.byteOffset).getUint32(0, true);
    };
    expect(await used(-1n)).toBe(0);
    expect(await used(2n ** 63n - 1n)).toBe(0);
    // From the start: '.' and '..', each a 24-byte header and the name.
    expect(await used(0n)).toBe(24 + 1 + 24 + 2);
  });

  it('fd_pread with a negative offset (past 2^63 as a u64) is EINVAL, not a read at the current position', async () => {
    const { rt, dir } = await fuzzGuest();
    writeFileSync(join(dir, 'a.txt'), 'hello');
    // Data at 1024: "a.txt", then two iovecs: 2 bytes to 40000, 3 bytes to 40100.
    const data = new Uint8Array(24);
    data.set(new TextEncoder().encode('a.txt'));
    const iov = new DataView(data.buffer, 8);
    iov.setUint32(0, 40000, true);
    iov.setUint32(4, 2, true);
    iov.setUint32(8, 40100, true);
    iov.setUint32(12, 3, true);
    const WASI = 'wasi_snapshot_preview1';
    const program = [
      // fd 4: the grant (fd 3, read-only)'s a.txt, opened to read, seek and tell; read 2 bytes ("he").
      step(WASI, 'path_open', [3, 0, 1024, 5, 0, 2n | 4n | 32n, 0n, 0, 50000]),
      step(WASI, 'fd_read', [4, 1032, 1, 50004]),
      // pread at -1: Node took -1 for "the current position" and read "llo" (3 bytes).
      step(WASI, 'fd_pread', [4, 1040, 1, -1n, 50008]),
      step('nuvola:io', 'output_write', [50000, 12]),
    ];
    const result = await rt.invoke('fuzz', encodeProgram(IMPORTS, program, data));
    const out = new DataView(result.output.buffer, result.output.byteOffset, 12);
    expect([out.getUint32(0, true), out.getUint32(4, true), out.getUint32(8, true)]).toEqual([4, 2, 0]);
  });

  it('a length past 2^32 is out of range, not wrapped to a small one (an iovec count of 2^31 passed the check as 0 bytes)', async () => {
    // The bounds check itself, as the host calls it with a length it computed (count × 8).
    const ctx = { fn: 'f', memory: new WebAssembly.Memory({ initial: 1 }) } as unknown as GuestContext;
    for (const len of [2 ** 34, 2 ** 32, 2 ** 32 + 8, NaN]) {
      expect(() => guestBytes(ctx, 0, len, 'test')).toThrow(expect.objectContaining({ code: 'E_GUEST_POINTER' }));
    }
    expect(guestBytes(ctx, 65532, 4, 'test').byteLength).toBe(4);
    // Through a guest: fd_write with 2^31 iovecs (2^34 bytes) left iovecs() reading past an empty
    // view — reported as "call stack exhausted". Now WASI refuses counts over IOV_MAX first, and
    // the check above stands behind it: either way, no engine error.
    const { rt } = await fuzzGuest();
    for (const count of [-0x80000000, 0x20000000]) {
      const program = [step('wasi_snapshot_preview1', 'fd_write', [1, 40000, count, 50000])];
      const [outcome] = await Promise.allSettled([rt.invoke('fuzz', encodeProgram(IMPORTS, program, new Uint8Array(0)))]);
      if (outcome!.status === 'rejected') expect(outcome!.reason).toMatchObject({ code: 'E_GUEST_POINTER' });
      else expect(outcome!.value.returnCode).toBe(0);
    }
  });

  it('a kernel whose output does not fit in guest memory fails with E_GUEST_POINTER before it runs', async () => {
    const { rt } = await fuzzGuest();
    // 64×1 by 1×64: 4096 results, to be written 4 bytes before the end of a 64 KiB memory.
    const program = [step('nuvola:kernels', 'matmul_f32', [0, 0, 64, 1, 64, 65532])];
    await expect(rt.invoke('fuzz', encodeProgram(IMPORTS, program, new Uint8Array(0)))).rejects.toMatchObject({ code: 'E_GUEST_POINTER' });
    const kernels = rt.stats().kernels;
    expect((kernels?.gpuCalls ?? 0) + (kernels?.cpuCalls ?? 0)).toBe(0);
  });

  it('env.trace counts against maxLogBytes like every other log line', async () => {
    const { rt, logs } = await fuzzGuest({ maxLogBytes: 100 });
    // An AssemblyScript string of 2000 'A's (its byte length in the 4 bytes before it), traced 8 times.
    const data = new Uint8Array(4 + 4000);
    new DataView(data.buffer).setUint32(0, 4000, true);
    for (let i = 4; i < data.length; i += 2) data[i] = 0x41;
    const trace = step('env', 'trace', [1024 + 4, 0, 0, 0, 0, 0, 0]);
    const result = await rt.invoke('fuzz', encodeProgram(IMPORTS, Array<Step>(8).fill(trace), data));
    expect(result.returnCode).toBe(0);
    const traced = logs.filter((line) => line.startsWith('trace:')).join('');
    expect(traced.length).toBeLessThan(200);
    expect(traced).toMatch(/^trace: A+… \[log truncated: maxLogBytes reached\]$/);
  });

  it('a guest that catches the trap of its cancellation cannot suspend again (its stack and memory would never be freed)', async () => {
    const { rt, logs } = await fuzzGuest();
    // Sleep past the timeout; when cancelled, catch the trap and sleep again; then log "after".
    const sleep = step('nuvola:io', 'sleep', [0x7fffffff]);
    const program = [sleep, sleep, step('nuvola:io', 'log', [1024, 5])];
    await expect(rt.invoke('fuzz_catch', encodeProgram(IMPORTS, program, new TextEncoder().encode('after')))).rejects.toMatchObject({
      code: 'E_TIMEOUT',
    });
    // The second sleep fails at once instead of parking the cancelled guest for 24 days, so the
    // guest goes on to its last step (and then ends; nothing else waits for it).
    await until(() => logs.includes('after'));
    expect((await rt.invoke('fuzz_catch', encodeProgram(IMPORTS, [], new Uint8Array(0)))).returnCode).toBe(0);
  });

  it('a host import declared with the wrong types or arity is refused at register with E_INVALID_MODULE (the engine would link it)', async () => {
    const { rt } = await fuzzGuest();
    // increment_global with an f64 delta once reached the store as a number, whose bigint
    // arithmetic threw a TypeError reported as "the state tier is unreachable".
    const mistyped: ImportSig[] = IMPORTS.map((i) =>
      i.module === 'nuvola:state' && i.name === 'increment_global' ? { ...i, params: i.params.map((p) => (p === 'i64' ? 'f64' : p)) } : i,
    );
    await expect(rt.register('mistyped', fuzzGuestModule({ imports: mistyped }))).rejects.toMatchObject({
      code: 'E_INVALID_MODULE',
      message: expect.stringContaining(
        'nuvola:state.increment_global as (i32, i32, f64) -> (i64) (the host provides (i32, i32, i64) -> (i64))',
      ),
    });
    // One argument too many, and a result the host does not give.
    const arity: ImportSig[] = IMPORTS.map((i) =>
      i.module === 'nuvola:io' && i.name === 'log' ? { ...i, params: [...i.params, 'int'] } : i,
    );
    await expect(rt.register('arity', fuzzGuestModule({ imports: arity }))).rejects.toMatchObject({
      code: 'E_INVALID_MODULE',
      details: { imports: ['nuvola:io.log as (i32, i32, i32) -> () (the host provides (i32, i32) -> ())'] },
    });
    const result: ImportSig[] = IMPORTS.map((i) => (i.module === 'nuvola:comm' && i.name === 'send' ? { ...i, result: 'i32' } : i));
    await expect(rt.register('result', fuzzGuestModule({ imports: result }))).rejects.toMatchObject({ code: 'E_INVALID_MODULE' });
    // The table with every import as the host provides it registers.
    await rt.register('exact', fuzzGuestModule({ imports: IMPORTS }));
    expect(await rt.state.incrementGlobal('n', 0n)).toBe(0n);
  });
});
