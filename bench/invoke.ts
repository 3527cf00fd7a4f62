/**
 * `nuvola bench invoke`: the cost of one invocation, side by side in one process run with
 * (a) the same empty guest called directly on the main thread (the floor) and
 * (c) piscina running an equivalent trivial task on the same number of workers.
 * Also times register-to-first-result for a ~100 KB module, and the same echo as an SDK
 * guest, a WASI command and a component.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import { buildGuest, createRuntime, type Runtime } from 'nuvola';
import { buildComponent, ECHO_COMPONENT_WAT } from './components.js';
import { figure, latencyRun, median, report, throughputRun, type BenchReport, type Figure } from './harness.js';

export interface InvokeBenchOptions {
  workers: number;
  idleSpinMicros?: number;
  runs: number;
  latencyCalls: number;
  throughputCalls: number;
  concurrency: number;
}

export const INVOKE_DEFAULTS: InvokeBenchOptions = { workers: 2, runs: 5, latencyCalls: 2000, throughputCalls: 20000, concurrency: 256 };

const guestDir = fileURLToPath(new URL('../../bench/guests/', import.meta.url));

/** A ~100 KB guest: the padded template filled with a table of pseudo-random u64s. */
async function paddedGuest(): Promise<Uint8Array> {
  const template = await readFile(join(guestDir, 'padded.ts'), 'utf8');
  let x = 0x2545f491n;
  const values: string[] = [];
  for (let i = 0; i < 12_000; i++) {
    x = (x * 6364136223846793005n + 1442695040888963407n) & 0xffffffffffffffffn;
    values.push(`${x}`);
  }
  const dir = await mkdtemp(join(tmpdir(), 'nuvola-bench-'));
  try {
    const file = join(dir, 'padded.ts');
    await writeFile(file, template.replace('PADDING', values.join(',')));
    return await buildGuest(file);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Warm invokes of the same echo as an SDK guest, a WASI command (AssemblyScript + wasi-shim)
 * and a component, in one runtime, rounds rotating which goes first: each figure is the WASI
 * or component echo with the SDK echo as its baseline.
 */
async function abiRows(rt: Runtime, runs: number, latencyCalls: number, throughputCalls: number, concurrency: number): Promise<Figure[]> {
  await rt.register('echo-sdk', await buildGuest(join(guestDir, 'echo.ts')));
  await rt.register(
    'echo-wasi',
    await buildGuest(fileURLToPath(new URL('../../guest/examples/wasi/echo.ts', import.meta.url)), { wasi: true }),
  );
  await rt.register('echo-component', await buildComponent(ECHO_COMPONENT_WAT));
  const input = new TextEncoder().encode('an echo of sixty-four bytes, the same for all three guests....');
  const kinds = ['echo-sdk', 'echo-wasi', 'echo-component'] as const;
  const call = (fn: string) => async () => {
    const result = await rt.invoke(fn, input);
    if (result.output.byteLength !== input.byteLength) throw new Error(`bench invoke: ${fn} echoed ${result.output.byteLength} bytes`);
  };
  for (const fn of kinds) {
    await throughputRun(call(fn), 2000, concurrency);
    await latencyRun(call(fn), 300);
  }
  const lat: Record<string, number[]> = {};
  const tput: Record<string, number[]> = {};
  for (let run = 0; run < runs; run++) {
    for (let k = 0; k < kinds.length; k++) {
      const fn = kinds[(k + run) % kinds.length]!;
      (lat[fn] ??= []).push((await latencyRun(call(fn), latencyCalls)).p50);
      (tput[fn] ??= []).push(await throughputRun(call(fn), throughputCalls, concurrency));
    }
  }
  const rows: Figure[] = [];
  for (const [fn, label] of [
    ['echo-wasi', 'WASI echo'],
    ['echo-component', 'component echo'],
  ] as const) {
    rows.push(figure(`${label}, latency p50`, 'µs', 'lower', lat[fn]!, 'SDK echo', lat['echo-sdk']!));
    rows.push(figure(`${label}, throughput, ${concurrency} in flight`, 'calls/s', 'higher', tput[fn]!, 'SDK echo', tput['echo-sdk']!));
  }
  return rows;
}

export async function benchInvoke(options: InvokeBenchOptions = INVOKE_DEFAULTS): Promise<BenchReport> {
  const { workers, runs, latencyCalls, throughputCalls, concurrency } = options;
  const empty = await buildGuest(join(guestDir, 'empty.ts'));
  const padded = await paddedGuest();

  const rt = await createRuntime({
    workers,
    logger: (e) => (e.level === 'warn' ? console.error(e.message) : undefined),
    ...(options.idleSpinMicros === undefined ? {} : { idleSpinMicros: options.idleSpinMicros }),
  });
  await rt.register('empty', empty);
  const piscina = new Piscina({
    filename: fileURLToPath(new URL('./piscina-task.js', import.meta.url)),
    minThreads: workers,
    maxThreads: workers,
  });
  const direct = new WebAssembly.Instance(new WebAssembly.Module(empty as Uint8Array<ArrayBuffer>), {
    env: { abort: () => {}, trace: () => {}, seed: () => 0 },
  }).exports as { main: () => number; _initialize: () => void };
  direct._initialize();
  const input = new Uint8Array(0);

  const ours = () => rt.invoke('empty', input);
  const theirs = () => piscina.run(input);
  const floor = () => Promise.resolve(direct.main());

  // Warm-up: JIT, instances, piscina's threads.
  await throughputRun(ours, 5000, concurrency);
  await throughputRun(theirs, 5000, concurrency);
  await latencyRun(ours, 500);
  await latencyRun(theirs, 500);
  await latencyRun(floor, 500);

  const lat = { ours: [] as number[], oursP99: [] as number[], theirs: [] as number[], theirsP99: [] as number[], floor: [] as number[] };
  const tput = { ours: [] as number[], theirs: [] as number[], floor: [] as number[] };
  for (let run = 0; run < runs; run++) {
    // Alternate who goes first so drift on a shared machine hurts both alike.
    const order = run % 2 === 0 ? ['ours', 'theirs'] : ['theirs', 'ours'];
    for (const who of order) {
      const call = who === 'ours' ? ours : theirs;
      const l = await latencyRun(call, latencyCalls);
      const t = await throughputRun(call, throughputCalls, concurrency);
      if (who === 'ours') {
        lat.ours.push(l.p50);
        lat.oursP99.push(l.p99);
        tput.ours.push(t);
      } else {
        lat.theirs.push(l.p50);
        lat.theirsP99.push(l.p99);
        tput.theirs.push(t);
      }
    }
    lat.floor.push((await latencyRun(floor, latencyCalls)).p50);
    tput.floor.push(await throughputRun(floor, throughputCalls, concurrency));
  }

  // Register-to-first-result for a ~100 KB module, on a fresh name each time.
  const firstResult: number[] = [];
  for (let run = 0; run < runs; run++) {
    const t = performance.now();
    await rt.register(`padded-${run}`, padded);
    await rt.invoke(`padded-${run}`);
    firstResult.push(performance.now() - t);
  }
  const theirsFirst: number[] = [];
  for (let run = 0; run < runs; run++) {
    const t = performance.now();
    const inst = new WebAssembly.Instance(new WebAssembly.Module(padded as Uint8Array<ArrayBuffer>), {
      env: { abort: () => {}, trace: () => {}, seed: () => 0 },
      'nuvola:io': { input_size: () => 0, input_read: () => 0, output_write: () => {}, log: () => {}, sleep: () => {} },
    });
    (inst.exports as { _initialize: () => void; main: () => number })._initialize();
    (inst.exports as { main: () => number }).main();
    theirsFirst.push(performance.now() - t);
  }

  const abiFigures = await abiRows(rt, runs, latencyCalls, throughputCalls / 2, concurrency);

  await rt.close();
  await piscina.destroy();

  return report(
    'invoke',
    runs,
    [
      figure('latency, one call at a time (p50)', 'µs', 'lower', lat.ours, `piscina ${workers} workers`, lat.theirs, lat.oursP99),
      figure('latency p99', 'µs', 'lower', lat.oursP99, `piscina ${workers} workers`, lat.theirsP99),
      figure(`throughput, ${concurrency} in flight`, 'calls/s', 'higher', tput.ours, `piscina ${workers} workers`, tput.theirs),
      figure('latency vs direct in-process call (p50)', 'µs', 'lower', lat.ours, 'direct call, main thread', lat.floor),
      figure('throughput vs direct in-process call', 'calls/s', 'higher', tput.ours, 'direct call, main thread', tput.floor),
      figure(
        `register-to-first-result, ${Math.round(padded.byteLength / 1024)} KB module`,
        'ms',
        'lower',
        firstResult,
        'compile + instantiate + call on main thread',
        theirsFirst,
      ),
      ...abiFigures,
    ],
    [
      `${workers} workers; empty guest; ${latencyCalls} sequential calls and ${throughputCalls} calls per run; median of ${runs} runs.`,
      `median direct-call floor: ${median(lat.floor).toFixed(2)} µs`,
    ],
  );
}
