/**
 * What the host-boundary fuzzer (fuzz-boundary.test.ts) found, one test each, driven through
 * the same generated guest with a fixed program.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createRuntime, type Runtime, type RuntimeOptions } from 'nuvola';
import { encodeProgram, fuzzGuestModule, type Step } from './fuzz/guest-module.js';
import { IMPORTS } from './fuzz/signatures.js';

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
  const logs: string[] = [];
  const rt = await createRuntime({ workers: 1, ...options, logger: (e) => logs.push(e.message) });
  open.push(rt);
  const dir = mkdtempSync(join(tmpdir(), 'nuvola-fuzz-'));
  dirs.push(dir);
  await rt.register('fuzz', fuzzGuestModule(), { wasi: { dirs: [{ host: dir, guest: '/data' }] } });
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

  it('an iovec count whose byte length passes 2^32 is E_GUEST_POINTER, not a wrapped length and a host RangeError', async () => {
    const { rt } = await fuzzGuest();
    // 2^31 iovecs are 2^34 bytes: the bounds check used to take that modulo 2^32 (0), pass, and
    // leave fd_write to read past an empty view — reported as "call stack exhausted".
    for (const count of [-0x80000000, 0x20000000]) {
      const program = [step('wasi_snapshot_preview1', 'fd_write', [1, 40000, count, 50000])];
      await expect(rt.invoke('fuzz', encodeProgram(IMPORTS, program, new Uint8Array(0)))).rejects.toMatchObject({
        code: 'E_GUEST_POINTER',
      });
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
    data.fill(0x41, 4);
    const trace = step('env', 'trace', [1024 + 4, 0, 0, 0, 0, 0, 0]);
    const result = await rt.invoke('fuzz', encodeProgram(IMPORTS, Array<Step>(8).fill(trace), data));
    expect(result.returnCode).toBe(0);
    expect(logs.join('').length).toBeLessThan(200);
    expect(logs.join('')).toContain('[log truncated: maxLogBytes reached]');
  });
});
