/**
 * The region rows of `nuvola bench state` (issue 18), side by side in one run, each timed
 * inside the guest on the host's monotonic clock (bench/guests/region.ts), sides alternating:
 * - summing 1 M f64 from a region vs the same loop over the guest's own memory;
 * - `readInto` of 1 MiB from a region vs a Wasm `memory.copy` of 1 MiB from a shared memory
 *   into a module's own (on the main thread), vs a `memory.copy` within the guest's own memory
 *   (same guest and thread: a guest's copies ran at about half the main thread's here), and vs
 *   today's `state.readInto`;
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
  (memory 40)
  (func (export "copy") (param $dst i32) (param $src i32) (param $n i32) (param $reps i32)
    (loop $l
      (memory.copy 1 0 (local.get $dst) (local.get $src) (local.get $n))
      (br_if $l (local.tee $reps (i32.sub (local.get $reps) (i32.const 1)))))))`;

export async function regionFigures(rt: Runtime, runs: number): Promise<{ figures: Figure[]; notes: string[] }> {
  await rt.register('region', await buildGuest(join(guestDir, 'region.ts')), { stateKeys: ['bench-region-*'], timeoutMs: 60_000 });
  /** ns the guest measured, and what it output after them. */
  const timed = async (input: string): Promise<[number, string]> => {
    const output = new TextDecoder().decode((await rt.invoke('region', input)).output);
    const space = output.indexOf(' ');
    return [Number(output.slice(0, space)), output.slice(space + 1)];
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
  const src = new WebAssembly.Memory({ initial: 40, maximum: 65536, shared: true });
  const copier = new WebAssembly.Instance(new WebAssembly.Module((await parse(COPY_WAT)) as Uint8Array<ArrayBuffer>), { m: { src } })
    .exports.copy as (dst: number, src: number, n: number, reps: number) => void;
  // memcpy runs at half speed or less when source and destination lie a few bytes apart
  // modulo 4 KiB (4K aliasing): the baseline copies between addresses with the same low 12 bits as the
  // guest's (the key's base in the region memory, the guest's buffer).
  const [, dstAt] = await timed(`readInto bench-region-mib ${MiB} 1`);
  const view = await rt.state.view('bench-region-mib');
  const base = view.bytes.byteOffset;
  view.release();
  const dstOffset = 2 * 65536 + (Number(dstAt.split(' ')[0]) & 4095);
  const srcOffset = 65536 + (base & 4095);
  const copyReps = 50;
  const gbps = (ns: number): number => (MiB * copyReps) / ns;
  const readRegion: number[] = [];
  const readState: number[] = [];
  const memoryCopy: number[] = [];
  const ownCopy: number[] = [];
  for (let run = -1; run < runs; run++) {
    const sides: [number[], () => Promise<number>][] = [
      [readRegion, async () => (await timed(`readInto bench-region-mib ${MiB} ${copyReps}`))[0]],
      [
        memoryCopy,
        () => {
          const t = process.hrtime.bigint();
          copier(dstOffset, srcOffset, MiB, copyReps);
          return Promise.resolve(Number(process.hrtime.bigint() - t));
        },
      ],
      [readState, async () => (await timed(`stateRead bench-region-state ${MiB} ${copyReps}`))[0]],
      [ownCopy, async () => (await timed(`selfCopy ${MiB} ${copyReps}`))[0]],
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
      figure('region: readInto 1 MiB', 'GB/s', 'higher', readRegion, 'memory.copy within the guest’s own memory (same guest)', ownCopy),
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
      `regions: readInto copies from ${base & 4095} to ${dstOffset & 4095} modulo 4 KiB, and so does the memory.copy baseline.`,
      `regions: sums over ${n} f64 × ${reps} per call (sums ${sums.size === 1 ? 'all equal' : `DIFFER: ${[...sums].join(', ')}`}); readInto and memory.copy ${copyReps} × 1 MiB per sample; timed inside the guest (monotonic clock), so call overhead is not counted.`,
      `regions: ${calls} calls × ${adds} adds in ${bursts} bursts each, wall time of all ${calls}; final counts ${counts.length === 0 ? 'all exact' : `NOT exact: ${counts.join('; ')}`}.`,
      `regions against targets: sum ${(median(sumRegion) / median(sumPrivate)).toFixed(2)}× own memory (target ≥ 0.8×); readInto ${(median(readRegion) / median(memoryCopy)).toFixed(2)}× memory.copy on the main thread, ${(median(readRegion) / median(ownCopy)).toFixed(2)}× the guest's own (target ≥ 0.9×) and ${(median(readRegion) / median(readState)).toFixed(2)}× state.readInto (target ≥ 2×).`,
    ],
  };
}
