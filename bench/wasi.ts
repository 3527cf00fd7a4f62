/**
 * `nuvola bench wasi`: which WASI preview 1 implementation nuvola's workers should use, by
 * measurement. One thread, one call at a time, the same WASI echo command (AssemblyScript +
 * wasi-shim, guest/examples/wasi/echo.ts) with its input on stdin and its stdout captured in
 * memory, as a function call needs:
 *   - nuvola's own imports (runtime/capabilities/wasi/guest.ts): a warm instance reset to the snapshot after
 *     each call (what a worker does), and a fresh instance restored per call;
 *   - Node's `node:wasi`: a new WASI object and instance per call (its stdio are file
 *     descriptors, so stdin and stdout are temporary files);
 *   - `@wasmer/wasi`: a new WASI object and instance per call, stdio in memory.
 */
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WASI as NodeWasi } from 'node:wasi';
import { init as initWasmer, WASI as WasmerWasi } from '@wasmer/wasi';
import { buildGuest } from 'nuvola';
import { GuestInstance } from '../runtime/worker/instance.js';
import { localEnv, snapshotHere } from '../runtime/worker/local.js';
import { figure, median, report, type BenchReport } from './harness.js';

const echoSource = fileURLToPath(new URL('../../guest/examples/wasi/echo.ts', import.meta.url));

/** Median µs per call of `call`, run `calls` times. */
function perCall(call: () => void, calls: number): number {
  const t = performance.now();
  for (let i = 0; i < calls; i++) call();
  return ((performance.now() - t) / calls) * 1000;
}

export async function benchWasi(runs = 5, calls = 400): Promise<BenchReport> {
  const wasm = await buildGuest(echoSource, { wasi: true });
  const input = new TextEncoder().encode('hello from the WASI benchmark, '.repeat(8));
  const expected = Buffer.from(input);
  const check = (out: Uint8Array | Buffer, who: string): void => {
    if (!expected.equals(Buffer.from(out))) throw new Error(`bench wasi: ${who} echoed the wrong bytes`);
  };

  // nuvola: the worker's instance layer on this thread.
  const { spec, env } = await snapshotHere('echo', wasm, localEnv());
  const warm = GuestInstance.restore(spec, env);
  const nuvolaWarm = (): void => {
    warm.call(input, 1, Infinity);
    check(warm.finish(), 'nuvola (warm)');
    if (!warm.reset()) throw new Error('bench wasi: the echo instance could not be reset in place');
  };
  const nuvolaFresh = (): void => {
    const instance = GuestInstance.restore(spec, env);
    instance.call(input, 1, Infinity);
    check(instance.finish(), 'nuvola (fresh)');
    instance.dispose();
  };

  // node:wasi: stdio must be file descriptors.
  const module = new WebAssembly.Module(wasm as Uint8Array<ArrayBuffer>);
  const dir = mkdtempSync(join(tmpdir(), 'nuvola-bench-wasi-'));
  const stdinPath = join(dir, 'stdin');
  const stdoutPath = join(dir, 'stdout');
  const node = (): void => {
    writeFileSync(stdinPath, input);
    const stdin = openSync(stdinPath, 'r');
    const stdout = openSync(stdoutPath, 'w+');
    try {
      const wasi = new NodeWasi({ version: 'preview1', args: ['echo'], env: {}, stdin, stdout, stderr: 2, returnOnExit: true });
      const instance = new WebAssembly.Instance(module, wasi.getImportObject() as WebAssembly.Imports);
      wasi.start(instance);
    } finally {
      closeSync(stdin);
      closeSync(stdout);
    }
    check(readFileSync(stdoutPath), 'node:wasi');
  };

  await initWasmer();
  const wasmer = (): void => {
    const wasi = new WasmerWasi({ args: ['echo'], env: {} });
    const instance = wasi.instantiate(module, {});
    void instance;
    wasi.setStdinBuffer(input);
    wasi.start();
    check(wasi.getStdoutBuffer(), '@wasmer/wasi');
    wasi.free();
  };

  const sides = { nuvolaWarm, nuvolaFresh, node, wasmer };
  const times: Record<keyof typeof sides, number[]> = { nuvolaWarm: [], nuvolaFresh: [], node: [], wasmer: [] };
  try {
    for (const call of Object.values(sides)) perCall(call, calls / 4);
    for (let run = 0; run < runs; run++) {
      const order = Object.keys(sides) as (keyof typeof sides)[];
      if (run % 2 === 1) order.reverse();
      for (const who of order) times[who].push(perCall(sides[who], calls));
    }
  } finally {
    warm.dispose();
    rmSync(dir, { recursive: true, force: true });
  }

  return report(
    'wasi',
    runs,
    [
      figure(
        'WASI echo, warm instance reset per call',
        'µs',
        'lower',
        times.nuvolaWarm,
        'node:wasi, new WASI + instance per call',
        times.node,
      ),
      figure(
        'WASI echo, warm instance reset per call',
        'µs',
        'lower',
        times.nuvolaWarm,
        '@wasmer/wasi, new WASI + instance per call',
        times.wasmer,
      ),
      figure(
        'WASI echo, fresh instance from the snapshot per call',
        'µs',
        'lower',
        times.nuvolaFresh,
        'node:wasi, new WASI + instance per call',
        times.node,
      ),
      figure(
        'WASI echo, fresh instance from the snapshot per call',
        'µs',
        'lower',
        times.nuvolaFresh,
        '@wasmer/wasi, new WASI + instance per call',
        times.wasmer,
      ),
    ],
    [
      `one thread, one call at a time, ${input.byteLength} bytes in and out, ${calls} calls per run, median of ${runs} runs.`,
      `medians: nuvola warm ${median(times.nuvolaWarm).toFixed(1)} µs, nuvola fresh ${median(times.nuvolaFresh).toFixed(1)} µs, ` +
        `node:wasi ${median(times.node).toFixed(1)} µs, @wasmer/wasi ${median(times.wasmer).toFixed(1)} µs.`,
    ],
  );
}
