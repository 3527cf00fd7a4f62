/**
 * The region rows of `nuvola bench state` (issue 18), side by side in one run, each timed
 * inside the guest on the host's monotonic clock (bench/guests/region.ts), sides alternating:
 * - summing 1 M f64 from a region vs the same loop over the guest's own memory;
 * - `readInto` of 1 MiB from a region vs a Wasm `memory.copy` of 1 MiB from a shared memory
 *   into a module's own (on the main thread), and vs today's `state.readInto`;
 * - 8 calls on 2 workers (they suspend between bursts, so 8 instances interleave) adding 1 to
 *   one i32 with `atomicAddI32` vs the same loop on each instance's private counter; the final
 *   count is checked.
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from '@bytecodealliance/jco-transpile/wasm-tools';
import { buildGuest, type Runtime } from 'nuvola';
import { figure, median, type Figure } from './harness.js';

const MiB = 1024 * 1024;
const guestDir = fileURLToPath(new URL('../../bench/guests/', import.meta.url));

/** A module that copies `n` bytes from an imported shared memory into its own, `reps` times. */
const COPY_WAT = `(module
  (import "m" "src" (memory 1 65536 shared))
  (memory 17)
  (func (export "copy") (param $n i32) (param $reps i32)
    (loop $l
      (memory.copy 1 0 (i32.const 0) (i32.const 0) (local.get $n))
      (br_if $l (local.tee $reps (i32.sub (local.get $reps) (i32.const 1)))))))`;

export async function regionFigures(rt: Runtime, runs: number): Promise<{ figures: Figure[]; notes: string[] }> {
  await rt.register('region', await buildGuest(join(guestDir, 'region.ts')), { stateKeys: ['bench-region-*'], timeoutMs: 60_000 });
  /** ns the guest measured, and the value it computed. */
  const timed = async (input: string): Promise<[number, string]> => {
    const [ns, value] = new TextDecoder().decode((await rt.invoke('region', input)).output).split(' ');
    return [Number(ns), value!];
  };

  // Sum 1 M f64: region vs own memory.
  const n = 1 << 20;
  const reps = 4;
  const values = new Float64Array(n).map((_, i) => i & 7);
  await rt.state.write('bench-region-f64', new Uint8Array(values.buffer));
  const sumRegion: number[] = [];
  const sumPrivate: number[] = [];
  const sums = new Set<string>();
  for (let run = -1; run < runs; run++) {
    const sides: [number[], string][] = [
      [sumRegion, `sum bench-region-f64 ${n} ${reps}`],
      [sumPrivate, `sumPrivate ${n} ${reps}`],
    ];
    if (run % 2 === 1) sides.reverse();
    for (const [into, input] of sides) {
      const [ns, value] = await timed(input);
      sums.add(value);
      if (run >= 0) into.push((n * reps) / (ns / 1e3));
    }
  }

  // readInto 1 MiB: region vs memory.copy between two memories vs state.readInto.
  await rt.state.write(
    'bench-region-mib',
    new Uint8Array(MiB).map((_, i) => i & 0xff),
  );
  await rt.state.write(
    'bench-region-state',
    new Uint8Array(MiB).map((_, i) => i & 0xff),
  );
  const src = new WebAssembly.Memory({ initial: 17, maximum: 65536, shared: true });
  const copier = new WebAssembly.Instance(new WebAssembly.Module((await parse(COPY_WAT)) as Uint8Array<ArrayBuffer>), { m: { src } })
    .exports.copy as (n: number, reps: number) => void;
  const copyReps = 50;
  const gbps = (ns: number): number => (MiB * copyReps) / ns;
  const readRegion: number[] = [];
  const readState: number[] = [];
  const memoryCopy: number[] = [];
  for (let run = -1; run < runs; run++) {
    const sides: [number[], () => Promise<number>][] = [
      [readRegion, async () => (await timed(`readInto bench-region-mib ${MiB} ${copyReps}`))[0]],
      [
        memoryCopy,
        () => {
          const t = process.hrtime.bigint();
          copier(MiB, copyReps);
          return Promise.resolve(Number(process.hrtime.bigint() - t));
        },
      ],
      [readState, async () => (await timed(`stateRead bench-region-state ${MiB} ${copyReps}`))[0]],
    ];
    if (run % 2 === 1) sides.reverse();
    for (const [into, side] of sides) {
      const ns = await side();
      if (run >= 0) into.push(gbps(ns));
    }
  }

  // Atomic adds from 8 instances on 2 workers vs a private counter.
  const calls = 8;
  const adds = 200_000;
  const bursts = 20;
  const atomic: number[] = [];
  const plain: number[] = [];
  const counts: string[] = [];
  for (let run = -1; run < runs; run++) {
    const key = `bench-region-counter-${run}`;
    const sides: [number[], string][] = [
      [atomic, `add ${key} ${adds} ${bursts}`],
      [plain, `addPrivate - ${adds} ${bursts}`],
    ];
    if (run % 2 === 1) sides.reverse();
    for (const [into, input] of sides) {
      const t = performance.now();
      await Promise.all(Array.from({ length: calls }, () => rt.invoke('region', input)));
      if (run >= 0) into.push((calls * adds) / ((performance.now() - t) / 1000) / 1e6);
    }
    const final = await rt.state.read(key);
    const count = new DataView(final.buffer, final.byteOffset).getInt32(0, true);
    if (count !== calls * adds) counts.push(`${key}: ${count}`);
  }

  return {
    figures: [
      figure('region: sum 1 M f64 (getF64)', 'M f64/s', 'higher', sumRegion, 'the same loop over its own memory', sumPrivate),
      figure('region: readInto 1 MiB', 'GB/s', 'higher', readRegion, 'Wasm memory.copy, shared memory to own (main thread)', memoryCopy),
      figure('region: readInto 1 MiB', 'GB/s', 'higher', readRegion, 'state.readInto 1 MiB (local tier, host call)', readState),
      figure(
        `region: atomicAddI32, ${calls} instances on 2 workers, one counter`,
        'M adds/s',
        'higher',
        atomic,
        'the same loop on a private counter',
        plain,
      ),
    ],
    notes: [
      `regions: sums over ${n} f64 × ${reps} per call (sums ${sums.size === 1 ? 'all equal' : `DIFFER: ${[...sums].join(', ')}`}); readInto and memory.copy ${copyReps} × 1 MiB per sample; timed inside the guest (monotonic clock), so call overhead is not counted.`,
      `regions: ${calls} calls × ${adds} adds in ${bursts} bursts each, wall time of all ${calls}; final counts ${counts.length === 0 ? 'all exact' : `NOT exact: ${counts.join('; ')}`}.`,
      `regions against targets: sum ${(median(sumRegion) / median(sumPrivate)).toFixed(2)}× own memory (target ≥ 0.8×); readInto ${(median(readRegion) / median(memoryCopy)).toFixed(2)}× memory.copy (target ≥ 0.9×) and ${(median(readRegion) / median(readState)).toFixed(2)}× state.readInto (target ≥ 2×).`,
    ],
  };
}
