/**
 * `nuvola bench comm`, side by side in one run:
 * - one chain hop (chain.call + chain.wait of an empty function, inside a guest) vs one
 *   `invoke` of the same function from the host, and a chain 100 calls deep vs 100 invokes;
 * - a send/recv round trip of 1 KiB and 1 MiB between two ranks, direct (comm) vs through
 *   the global tier (Redis: write + push, pull until there);
 * - allreduce SUM of 1 MiB of f64 over 2, 4 and 8 ranks, direct vs through Redis, and vs a
 *   plain memcpy of 1 MiB.
 * Guest-side loops are timed from the host: (a run of n iterations − a run of 0) / n.
 * Starts its own throwaway redis-server (which must be installed).
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildGuest, createRuntime } from 'nuvola';
import { time, figure, latencyRun, median, report, type BenchReport, type Figure } from './harness.js';
import { startRedis } from '../state/redis-server.js';

export interface CommBenchOptions {
  runs: number;
}

export const COMM_DEFAULTS: CommBenchOptions = { runs: 5 };

const KiB = 1024;
const MiB = 1024 * 1024;
const guestDir = fileURLToPath(new URL('../../bench/guests/', import.meta.url));

export async function benchComm(options: CommBenchOptions = COMM_DEFAULTS): Promise<BenchReport> {
  const { runs } = options;
  const redis = await startRedis();
  const rt = await createRuntime({ workers: 2, redis: redis.url, logger: () => {} });
  let runId = 0;
  try {
    await rt.register('x', await buildGuest(join(guestDir, 'exchange.ts')), { timeoutMs: 120_000 });
    await rt.register('leaf', await buildGuest(join(guestDir, 'leaf.ts')));
    await rt.register('deep', await buildGuest(join(guestDir, 'deep.ts')));

    /** ms per iteration of a guest loop: (n iterations − 0 iterations) / n, in a group of `size`. */
    const perIteration = async (
      mode: string,
      size: number,
      n: number,
      bytes: number,
      placement: 'spread' | 'pack' = 'spread',
    ): Promise<number> => {
      const go = (k: number): Promise<unknown> =>
        size === 1
          ? rt.invoke('x', `${mode} ${k} ${bytes} ${runId++}`)
          : rt.invokeGroup('x', size, `${mode} ${k} ${bytes} ${runId++}`, { placement });
      const zero = await time(() => go(0));
      const full = await time(() => go(n));
      return Math.max(0, full - zero) / n;
    };

    // Chain hop vs invoke.
    const hop: number[] = [];
    const invoke: number[] = [];
    const deep: number[] = [];
    const hundredInvokes: number[] = [];
    const i32 = (v: number): Uint8Array => new Uint8Array(new Int32Array([v]).buffer);
    await perIteration('hop', 1, 500, 0);
    await latencyRun(() => rt.invoke('leaf'), 500);
    await rt.invoke('deep', i32(100));
    for (let run = 0; run < runs; run++) {
      hop.push((await perIteration('hop', 1, 2000, 0)) * 1000);
      invoke.push((await latencyRun(() => rt.invoke('leaf'), 2000)).p50);
      deep.push(await time(() => rt.invoke('deep', i32(100))));
      hundredInvokes.push(
        await time(async () => {
          for (let i = 0; i < 100; i++) await rt.invoke('leaf');
        }),
      );
    }

    // Point to point, direct vs Redis.
    const exchange = async (bytes: number, directN: number, redisN: number): Promise<{ direct: number[]; viaRedis: number[] }> => {
      const direct: number[] = [];
      const viaRedis: number[] = [];
      await perIteration('direct-pingpong', 2, directN, bytes);
      await perIteration('redis-pingpong', 2, redisN, bytes);
      for (let run = 0; run < runs; run++) {
        direct.push((await perIteration('direct-pingpong', 2, directN, bytes)) * 1000);
        viaRedis.push((await perIteration('redis-pingpong', 2, redisN, bytes)) * 1000);
      }
      return { direct, viaRedis };
    };
    const small = await exchange(KiB, 500, 100);
    const packed: number[] = [];
    await perIteration('direct-pingpong', 2, 500, KiB, 'pack');
    for (let run = 0; run < runs; run++) packed.push((await perIteration('direct-pingpong', 2, 500, KiB, 'pack')) * 1000);
    const big = await exchange(MiB, 30, 10);

    // Allreduce of 1 MiB, direct vs Redis vs memcpy.
    const reduce: Record<number, { direct: number[]; viaRedis: number[] }> = {};
    for (const size of [2, 4, 8]) {
      const direct: number[] = [];
      const viaRedis: number[] = [];
      await perIteration('direct-allreduce', size, 5, MiB);
      for (let run = 0; run < runs; run++) {
        direct.push((await perIteration('direct-allreduce', size, 10, MiB)) * 1000);
        viaRedis.push((await perIteration('redis-allreduce', size, 3, MiB)) * 1000);
      }
      reduce[size] = { direct, viaRedis };
    }
    const src = new Uint8Array(MiB).fill(7);
    const dst = new Uint8Array(MiB);
    const memcpy: number[] = [];
    for (let run = 0; run < runs; run++) {
      const t = performance.now();
      for (let i = 0; i < 200; i++) dst.set(src);
      memcpy.push(((performance.now() - t) / 200) * 1000);
    }

    const figures: Figure[] = [
      figure('chain hop (call + wait, in a guest)', 'µs', 'lower', hop, 'invoke from the host (p50)', invoke),
      figure('chain 100 calls deep', 'ms', 'lower', deep, '100 invokes one after another', hundredInvokes),
      figure('1 KiB round trip between two ranks', 'µs', 'lower', small.direct, 'through Redis (write+push, pull)', small.viaRedis),
      figure(
        "1 KiB round trip, ranks on one worker (placement 'pack')",
        'µs',
        'lower',
        packed,
        'through Redis (write+push, pull)',
        small.viaRedis,
      ),
      figure('1 MiB round trip between two ranks', 'µs', 'lower', big.direct, 'through Redis (write+push, pull)', big.viaRedis),
      ...[2, 4, 8].map((size) =>
        figure(`allreduce 1 MiB f64, ${size} ranks`, 'µs', 'lower', reduce[size]!.direct, 'through Redis', reduce[size]!.viaRedis),
      ),
      figure('allreduce 1 MiB f64, 2 ranks', 'µs', 'lower', reduce[2]!.direct, 'memcpy of 1 MiB', memcpy),
    ];
    return report('comm', runs, figures, [
      `2 workers, Redis on loopback; guest loops timed from the host as (n iterations − 0) / n; median of ${runs} runs.`,
      `allreduce bandwidth, 2 ranks: ${(MiB / (median(reduce[2]!.direct) / 1e6) / 1e9).toFixed(2)} GB/s; memcpy ${(MiB / (median(memcpy) / 1e6) / 1e9).toFixed(2)} GB/s.`,
      'Targets: 1 KiB exchange ≥ 20× faster than through Redis; a chain hop ≤ 2× an invoke; allreduce within 3× of memcpy for 2 ranks.',
    ]);
  } finally {
    await rt.close();
    await redis.stop();
  }
}
