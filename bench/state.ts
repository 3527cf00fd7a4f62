/**
 * `nuvola bench state`, side by side in one run:
 * - reading and writing 1 MiB between the local tier and a guest vs a plain memcpy of 1 MiB;
 * - push and pull of 1 MiB through the global tier (Redis) vs the raw Redis client doing
 *   SET and GET of the same bytes;
 * - a partial push of 1% dirty chunks of a 64 MiB value vs a full push of it;
 * - a visit counter three ways, 32 calls in flight: the atomic global increment vs the global
 *   write lock around pull/add/push (both exact across hosts) vs the local tier's write lock
 *   (exact on one host only).
 * - the region rows (bench/state-regions.ts): guests reading and writing state in place.
 * Starts its own throwaway redis-server (which must be installed).
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { buildGuest, createRuntime } from 'nuvola';
import { time, figure, median, report, throughputRun, type BenchReport } from './harness.js';
import { startRedis } from '../state/redis-server.js';
import { regionFigures } from './state-regions.js';

export interface StateBenchOptions {
  runs: number;
}

export const STATE_DEFAULTS: StateBenchOptions = { runs: 9 };

const MiB = 1024 * 1024;
const CHUNK = 64 * 1024;
const guestDir = fileURLToPath(new URL('../../bench/guests/', import.meta.url));

export async function benchState(options: StateBenchOptions = STATE_DEFAULTS): Promise<BenchReport> {
  const { runs } = options;
  const redis = await startRedis();
  const raw = new Redis(redis.url);
  const rt = await createRuntime({ workers: 2, redis: redis.url, logger: () => {} });
  try {
    const oneMiB = new Uint8Array(MiB).map((_, i) => (i * 31) & 0xff);

    // Local tier <-> guest memory vs memcpy.
    await rt.register('copy', await buildGuest(join(guestDir, 'state_copy.ts')));
    await rt.state.write('bench-local', oneMiB);
    const rounds = 50;
    await rt.invoke('copy', `bench-local ${rounds}`);
    const localOp: number[] = [];
    const memcpyOp: number[] = [];
    const sharedCopyOp: number[] = [];
    const dst = new Uint8Array(MiB);
    // Sized like a key's allocation (values of 1 MiB get 2 MiB of room, see state/key-state.ts).
    const shared = Buffer.from(new SharedArrayBuffer(2 * MiB));
    shared.set(oneMiB);
    const view = Buffer.from(dst.buffer, dst.byteOffset, dst.byteLength);
    const copyTime = (copy: () => void): number => {
      const t = performance.now();
      for (let i = 0; i < 2 * rounds; i++) copy();
      return (performance.now() - t) / (2 * rounds);
    };
    for (let run = 0; run < runs; run++) {
      const empty = await time(() => rt.invoke('copy', 'bench-local 0'));
      const full = await time(() => rt.invoke('copy', `bench-local ${rounds}`));
      localOp.push((full - empty) / (2 * rounds));
      memcpyOp.push(copyTime(() => dst.set(oneMiB)));
      let flip = false;
      sharedCopyOp.push(
        copyTime(() => {
          flip = !flip;
          if (flip) shared.copy(view, 0, 0, MiB);
          else shared.set(dst, 0);
        }),
      );
    }
    const gbps = (ms: number): number => MiB / (ms / 1000) / 1e9;

    // Global tier vs the raw client, 1 MiB.
    const push: number[] = [];
    const pull: number[] = [];
    const set: number[] = [];
    const get: number[] = [];
    const rawBytes = Buffer.from(oneMiB);
    await rt.state.write('bench-global', oneMiB);
    await rt.state.push('bench-global');
    await raw.set('bench-raw', rawBytes);
    // Interleaved single operations, rotating which goes first, many times: on a shared
    // machine the spread of one 1 MiB round trip is wider than the difference measured, and
    // interleaving exposes both sides to the same conditions. Medians over all samples.
    const ops: [number[], () => Promise<unknown>][] = [
      [push, () => rt.state.push('bench-global')],
      [set, () => raw.set('bench-raw', rawBytes)],
      [pull, () => rt.state.pull('bench-global')],
      [get, () => raw.getBuffer('bench-raw')],
    ];
    const samples = 20 * runs;
    for (let i = -10; i < samples; i++) {
      for (let j = 0; j < ops.length; j++) {
        const [into, op] = ops[(i + 10 + j) % ops.length]!;
        const t = await time(op);
        if (i >= 0) into.push(t);
      }
    }

    // Partial push of 1% dirty chunks of 64 MiB vs full push.
    const bigSize = 64 * MiB;
    const chunks = bigSize / CHUNK;
    const dirtyChunks = Math.round(chunks / 100);
    await rt.state.write('bench-big', new Uint8Array(bigSize).fill(1));
    const fullPush: number[] = [];
    const partialPush: number[] = [];
    const patch = new Uint8Array(16).fill(7);
    for (let run = 0; run < runs + 1; run++) {
      const f = await time(() => rt.state.push('bench-big'));
      for (let c = 0; c < dirtyChunks; c++)
        await rt.state.writeAt('bench-big', Math.floor((c * chunks) / dirtyChunks) * CHUNK + 100, patch);
      const p = await time(() => rt.state.pushPartial('bench-big'));
      if (run === 0) continue;
      fullPush.push(f);
      partialPush.push(p);
    }
    const check = await raw.getrangeBuffer('nuvola:v:{bench-big}', 100, 115);
    const pushedOk = check.every((b) => b === 7);

    // A visit counter three ways, alternating which goes first.
    await rt.register('counter', await buildGuest(join(guestDir, 'counter.ts')));
    const ways = { atomic: 2000, locked: 300, local: 2000 } as const;
    const perSecond: Record<keyof typeof ways, number[]> = { atomic: [], locked: [], local: [] };
    const exact: string[] = [];
    for (let run = -1; run < runs; run++) {
      const order = (Object.keys(ways) as (keyof typeof ways)[]).slice();
      if (run % 2 === 1) order.reverse();
      for (const way of order) {
        const key = `bench-counter-${way}-${run}`;
        const calls = ways[way];
        const rate = await throughputRun(() => rt.invoke('counter', `${way} ${key}`), calls, 32);
        const final = way === 'local' ? await rt.state.read(key) : (await rt.state.pull(key), await rt.state.read(key));
        const count = final.byteLength === 8 ? new DataView(final.buffer, final.byteOffset, 8).getBigInt64(0, true) : -1n;
        if (count !== BigInt(calls)) exact.push(`${way} counted ${count} of ${calls}`);
        if (run >= 0) perSecond[way].push(rate);
      }
    }

    const regions = await regionFigures(rt, runs);

    return report(
      'state',
      runs,
      [
        figure(
          'local tier <-> guest, 1 MiB read or write',
          'GB/s',
          'higher',
          localOp.map(gbps),
          'memcpy of 1 MiB, ordinary memory',
          memcpyOp.map(gbps),
        ),
        figure(
          'local tier <-> guest, 1 MiB read or write',
          'GB/s',
          'higher',
          localOp.map(gbps),
          'memcpy out of / into a 2 MiB SharedArrayBuffer, alternating',
          sharedCopyOp.map(gbps),
        ),
        figure('push 1 MiB to Redis', 'ms', 'lower', push, 'raw ioredis SET, same bytes', set),
        figure('pull 1 MiB from Redis', 'ms', 'lower', pull, 'raw ioredis GET, same bytes', get),
        figure(
          'counter: atomic incrementGlobal (exact across hosts)',
          'calls/s',
          'higher',
          perSecond.atomic,
          'global write lock + pull/add/push (exact across hosts)',
          perSecond.locked,
        ),
        figure(
          'counter: atomic incrementGlobal (exact across hosts)',
          'calls/s',
          'higher',
          perSecond.atomic,
          'local write lock + read/add/write (exact on one host only)',
          perSecond.local,
        ),
        figure(
          `partial push, ${dirtyChunks} dirty 64 KiB chunks (1%) of 64 MiB`,
          'ms',
          'lower',
          partialPush,
          'full push of the 64 MiB value',
          fullPush,
        ),
        ...regions.figures,
      ],
      [
        `global tier: ${20 * runs} interleaved samples of each operation after 10 warm-up rounds.`,
        `local tier: a guest copies the value into its memory (readInto) and back (writeAt) ${rounds} times per call; per-operation time is the call minus an empty call, over ${2 * rounds} operations.`,
        `partial push sends ${dirtyChunks * CHUNK} of ${bigSize} bytes (${((100 * dirtyChunks * CHUNK) / bigSize).toFixed(2)}%); bytes landed in Redis: ${pushedOk ? 'verified' : 'NOT verified'}.`,
        `counter: ${ways.atomic} / ${ways.locked} / ${ways.local} calls per run (atomic / locked / local), 32 in flight, on 2 workers and one Redis; final counts ${exact.length === 0 ? 'all exact' : `NOT exact: ${exact.join('; ')}`}.`,
        `global-tier throughput relative to the raw client: push ${(median(set) / median(push)).toFixed(2)}×, pull ${(median(get) / median(pull)).toFixed(2)}× (target ≥ 0.8×).`,
        ...regions.notes,
      ],
    );
  } finally {
    await rt.close();
    raw.disconnect();
    await redis.stop();
  }
}
