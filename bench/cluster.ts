/**
 * `nuvola bench cluster`, side by side in one run, with a throwaway redis-server and cluster
 * hosts as child processes on this machine:
 * - the latency of one remote invocation (a caller with capacity 0 → the work stream → a host
 *   process → the reply stream) vs the same call run locally, and vs the raw Redis client doing
 *   the same request/reply over streams with a child process (no Wasm, no nuvola);
 * - the throughput of calls routed through Redis Streams with 1, 2 and 3 host processes (one
 *   worker each) vs one local runtime with one worker;
 * - the time to recover a killed host's calls vs the configured host timeout.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { randomBytes, randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { buildGuest, createRuntime, type Runtime } from 'nuvola';
import { startHost, type HostProcess } from '../cluster/spawn.js';
import { figure, latencyRun, median, report, round, throughputRun, type BenchReport } from './harness.js';
import { startRedis, startRedisCluster } from '../state/redis-server.js';

export interface ClusterBenchOptions {
  runs: number;
  /** Sequential calls per latency run. */
  calls: number;
}

export const CLUSTER_DEFAULTS: ClusterBenchOptions = { runs: 5, calls: 300 };

const guestDir = fileURLToPath(new URL('../../bench/guests/', import.meta.url));
const rawServer = fileURLToPath(new URL('./cluster-raw-server.js', import.meta.url));
const TIMING = { heartbeatMs: 100, hostTimeoutMs: 1000 };
const NAP_MS = 400;
/**
 * The capacity of the hosts that take the throughput runs' calls: calls a host takes at once
 * (they queue in its pool of one worker). A batch of calls fits one host that has room for
 * it; with the default (4 × workers) every batch would be cut to 4.
 */
const TAKES = 64;

/** The raw-Redis request/reply baseline: its server child and a caller. */
async function rawEcho(url: string): Promise<{ call: (input: Buffer) => Promise<Buffer>; close: () => Promise<void> }> {
  const stream = `bench:raw:${randomUUID()}`;
  const replies = `${stream}:reply`;
  const child = spawn(process.execPath, [rawServer, url, stream], { stdio: ['ignore', 'pipe', 'inherit'] });
  await once(child.stdout!, 'data');
  const writer = new Redis(url);
  const reader = new Redis(url);
  const waiting = new Map<string, (b: Buffer) => void>();
  let open = true;
  const loop = (async () => {
    let last = '0-0';
    while (open) {
      const read = (await reader.xreadBuffer('COUNT', 1024, 'BLOCK', 200, 'STREAMS', replies, last).catch(() => null)) as
        [Buffer, [Buffer, Buffer[]][]][] | null;
      for (const [entryId, fields] of read?.[0]?.[1] ?? []) {
        last = entryId.toString();
        waiting.get(fields[1]!.toString())?.(fields[3]!);
        waiting.delete(fields[1]!.toString());
      }
    }
  })();
  return {
    call: (input) =>
      new Promise<Buffer>((resolve, reject) => {
        const id = randomUUID();
        waiting.set(id, resolve);
        writer.xadd(stream, '*', 'id', id, 'from', replies, 'in', input).catch(reject);
      }),
    close: async () => {
      open = false;
      await loop;
      child.kill('SIGTERM');
      writer.disconnect();
      reader.disconnect();
    },
  };
}

/** Redis's own work so far: per command, its calls and CPU time (INFO commandstats), in µs. */
type Work = Map<string, { calls: number; usec: number }>;

async function redisWork(raw: Redis): Promise<Work> {
  const info = await raw.info('everything');
  const work: Work = new Map();
  for (const m of info.matchAll(/^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/gm)) {
    work.set(m[1]!, { calls: Number(m[2]), usec: Number(m[3]) });
  }
  const cpu = (name: string): number => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(info)?.[1] ?? 0);
  work.set(CPU, { calls: 0, usec: 1e6 * (cpu('used_cpu_user_main_thread') + cpu('used_cpu_sys_main_thread')) });
  return work;
}

/**
 * What Redis did between two readings, per remote call: each command's count and µs (INFO
 * commandstats), and their sums — counted as the benchmark always has: a script's inner
 * commands count as commands, and their µs both in their own rows and in the script's. The
 * INFO that takes the second reading is left out. `cpu`: Redis's main thread's CPU time
 * (INFO cpu, user + system: parsing, replies and the network included), in µs.
 */
function perCall(
  before: Work,
  after: Work,
  calls: number,
): { commands: number; usec: number; cpu: number; by: Record<string, [number, number]> } {
  const by: Record<string, [number, number]> = {};
  let commands = 0;
  let usec = 0;
  for (const [name, a] of after) {
    if (name === CPU) continue;
    const b = before.get(name) ?? { calls: 0, usec: 0 };
    const n = a.calls - b.calls - (name === 'info' ? 1 : 0);
    if (n <= 0) continue;
    by[name] = [round(n / calls, 3), round((a.usec - b.usec) / calls, 2)];
    commands += n;
    usec += a.usec - b.usec;
  }
  const cpu = (after.get(CPU)?.usec ?? 0) - (before.get(CPU)?.usec ?? 0);
  return { commands: commands / calls, usec: usec / calls, cpu: cpu / calls, by };
}

/** The row of {@link Work} that holds Redis's main thread's CPU time. */
const CPU = '(cpu)';

/** CPU time (user + system) a process used so far, in µs (Linux /proc; 0 elsewhere). */
function cpuOf(pid: number | undefined): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    // utime and stime: fields 14 and 15 of the line, in clock ticks (100 a second on Linux).
    return ((Number(fields[11]) + Number(fields[12])) * 1e6) / 100;
  } catch {
    return 0;
  }
}

/** The commands of a remote call's path (what partitions spread), as INFO commandstats names them. */
const WORK_COMMANDS = ['xadd', 'xreadgroup', 'xread', 'multi', 'exec', 'xack', 'xdel', 'pexpire'];

/** Masters of the Redis Cluster phase. */
const MASTERS = 3;

/**
 * Throughput on a Redis Cluster of {@link MASTERS} masters with 3 host processes and a caller
 * (partitions from the topology: one per master), and each master's share of the commands:
 * the spread of one nuvola cluster's work over the masters. Default heartbeats.
 */
async function overMasters(
  echo: Uint8Array,
  input: Buffer,
  settings: { name: string; secret: string; heartbeatMs: number; hostTimeoutMs: number },
  runs: number,
): Promise<{
  throughput: number[];
  perMaster: number[];
  imbalance: number;
  workPerMaster: number[];
  workImbalance: number;
  byMaster: Record<string, [number, number]>[];
}> {
  const rc = await startRedisCluster(MASTERS);
  const target = { cluster: rc.urls };
  // The default heartbeat (every 500 ms): its commands land on the master of the cluster's own tag.
  const cluster = { name: `${settings.name}-rc`, secret: settings.secret };
  const hosts: HostProcess[] = [];
  const nodes = rc.urls.map((url) => new Redis(url));
  let caller: Runtime | undefined;
  try {
    for (let i = 0; i < 3; i++) hosts.push(await startHost({ workers: 1, redis: target, cluster: { ...cluster, capacity: TAKES } }));
    caller = await createRuntime({ workers: 1, redis: target, cluster: { ...cluster, capacity: 0 }, logger: () => {} });
    await caller.register('echo', echo);
    const call = (): Promise<unknown> => caller!.invoke('echo', input);
    await throughputRun(call, 1000, 256);
    const throughput: number[] = [];
    const totals = nodes.map(() => 0);
    const work = nodes.map(() => 0);
    const byMaster: Record<string, [number, number]>[] = [];
    for (let run = 0; run < runs; run++) {
      const before = await Promise.all(nodes.map((n) => redisWork(n)));
      throughput.push(await throughputRun(call, 3000, 256));
      const after = await Promise.all(nodes.map((n) => redisWork(n)));
      after.forEach((w, i) => {
        const { commands, by } = perCall(before[i]!, w, 3000);
        totals[i]! += commands;
        // The commands of the calls' path alone (not the heartbeat's script and its inner ones).
        for (const name of WORK_COMMANDS) work[i]! += by[name]?.[0] ?? 0;
        byMaster[i] = by;
      });
    }
    const perMaster = totals.map((t) => t / runs);
    const workPerMaster = work.map((t) => t / runs);
    return {
      throughput,
      perMaster,
      imbalance: Math.max(...perMaster) / Math.min(...perMaster) - 1,
      workPerMaster,
      workImbalance: Math.max(...workPerMaster) / Math.min(...workPerMaster) - 1,
      byMaster,
    };
  } finally {
    await caller?.close();
    for (const host of hosts) await host.kill();
    for (const node of nodes) node.disconnect();
    await rc.stop();
  }
}

export async function benchCluster(options: ClusterBenchOptions = CLUSTER_DEFAULTS): Promise<BenchReport> {
  const { runs, calls } = options;
  const redis = await startRedis();
  const cluster = { name: `bench-${process.pid}`, secret: randomBytes(32).toString('hex'), ...TIMING };
  const hosts: HostProcess[] = [];
  const rts: Runtime[] = [];
  const raw = new Redis(redis.url);
  let rawBaseline: Awaited<ReturnType<typeof rawEcho>> | undefined;
  try {
    const echo = await buildGuest(join(guestDir, 'echo.ts'));
    const nap = await buildGuest(join(guestDir, 'nap.ts'));
    hosts.push(await startHost({ workers: 1, redis: redis.url, cluster: { ...cluster, capacity: TAKES } }));
    const caller = await createRuntime({ workers: 1, redis: redis.url, cluster: { ...cluster, capacity: 0 }, logger: () => {} });
    rts.push(caller);
    const local = await createRuntime({ workers: 1, logger: () => {} });
    rts.push(local);
    await caller.register('echo', echo);
    await caller.register('nap', nap);
    await local.register('echo', echo);
    rawBaseline = await rawEcho(redis.url);
    const input = Buffer.alloc(64, 7);
    const remoteCall = (): Promise<unknown> => caller.invoke('echo', input);
    const localCall = (): Promise<unknown> => local.invoke('echo', input);
    const rawCall = rawBaseline.call;
    for (let i = 0; i < 300; i++) {
      await remoteCall();
      await localCall();
      await rawCall(input);
    }

    // Redis round trip, for the cost of a remote call in round trips.
    const pings: number[] = [];
    for (let run = 0; run < runs; run++) pings.push((await latencyRun(() => raw.ping(), 1000)).p50);
    const rtt = median(pings);

    const remote: number[] = [];
    const remoteP99: number[] = [];
    const here: number[] = [];
    const rawRemote: number[] = [];
    for (let run = 0; run < runs; run++) {
      const r = await latencyRun(remoteCall, calls);
      remote.push(r.p50);
      remoteP99.push(r.p99);
      here.push((await latencyRun(localCall, calls)).p50);
      rawRemote.push((await latencyRun(() => rawCall(input), calls)).p50);
    }
    const extraRtt = (median(remote) - median(here)) / rtt;

    // Throughput through the work stream with 1, 2, 3 hosts vs one local runtime.
    const throughput: {
      hosts: number;
      nuvola: number[];
      local: number[];
      redisMicrosPerCall: number[];
      redisCpuPerCall: number[];
      commandsPerCall: number[];
      raw: number[];
      callerCpuPerCall: number[];
      hostCpuPerCall: number[];
      byCommand: Record<string, [number, number]>[];
    }[] = [];
    for (let k = 1; k <= 3; k++) {
      while (hosts.length < k) hosts.push(await startHost({ workers: 1, redis: redis.url, cluster: { ...cluster, capacity: TAKES } }));
      await throughputRun(remoteCall, 1000, 256);
      const row = {
        hosts: k,
        nuvola: [] as number[],
        local: [] as number[],
        redisMicrosPerCall: [] as number[],
        redisCpuPerCall: [] as number[],
        commandsPerCall: [] as number[],
        raw: [] as number[],
        callerCpuPerCall: [] as number[],
        hostCpuPerCall: [] as number[],
        byCommand: [] as Record<string, [number, number]>[],
      };
      for (let run = 0; run < runs; run++) {
        const before = await redisWork(raw);
        const callerCpu = process.cpuUsage();
        const hostsCpu = hosts.reduce((n, h) => n + cpuOf(h.child.pid), 0);
        row.nuvola.push(await throughputRun(remoteCall, 3000, 256));
        const caller = process.cpuUsage(callerCpu);
        row.callerCpuPerCall.push((caller.user + caller.system) / 3000);
        row.hostCpuPerCall.push((hosts.reduce((n, h) => n + cpuOf(h.child.pid), 0) - hostsCpu) / 3000);
        const after = await redisWork(raw);
        // Redis's CPU per remote call (heartbeats included): what bounds one Redis's throughput.
        const work = perCall(before, after, 3000);
        row.redisMicrosPerCall.push(work.usec);
        row.redisCpuPerCall.push(work.cpu);
        row.commandsPerCall.push(work.commands);
        row.byCommand.push(work.by);
        row.local.push(await throughputRun(localCall, 3000, 256));
        row.raw.push(await throughputRun(() => rawCall(input), 3000, 256));
      }
      throughput.push(row);
    }
    const redisMicros = median(throughput.flatMap((r) => r.redisMicrosPerCall));
    const commands = median(throughput.flatMap((r) => r.commandsPerCall));
    const redisCpu = median(throughput.flatMap((r) => r.redisCpuPerCall));
    const callerCpu = median(throughput.flatMap((r) => r.callerCpuPerCall));
    const hostCpu = median(throughput.flatMap((r) => r.hostCpuPerCall));

    // A Redis Cluster of 3 masters: is one nuvola cluster's work spread over them?
    const spread = await overMasters(echo, input, cluster, runs);

    // Recovery: a survivor and a victim take 4 naps each; the victim is killed at once.
    while (hosts.length > 0) await hosts.pop()!.stop();
    const recovery: number[] = [];
    for (let run = 0; run < runs; run++) {
      const survivor = await startHost({ workers: 1, redis: redis.url, cluster: { ...cluster, capacity: 4 } });
      const victim = await startHost({ workers: 1, redis: redis.url, cluster: { ...cluster, capacity: 4 } });
      hosts.push(survivor, victim);
      const sent = Array.from({ length: 8 }, (_, i) =>
        caller.invoke('nap', String(NAP_MS), { idempotencyKey: `nap-${run}-${i}-${process.pid}`, timeoutMs: 30_000 }),
      );
      // Until both hold their four (the caller sees it in their heartbeats).
      for (let i = 0; i < 100; i++) {
        const view = await caller.cluster();
        if (view.hosts.find((h) => h.id === victim.id)?.inflight === 4) break;
        await new Promise((r) => setTimeout(r, 20));
      }
      const killed = performance.now();
      await victim.kill();
      const done = await Promise.all(sent.map((p) => p.then(() => performance.now())));
      recovery.push(Math.max(...done) - killed - NAP_MS);
      await survivor.stop();
      hosts.length = 0;
    }

    const figures = [
      figure('remote invocation latency p50 (work stream → host process)', 'µs', 'lower', remote, 'local invocation', here, remoteP99),
      figure('remote invocation latency p50', 'µs', 'lower', remote, 'raw Redis streams request/reply (no Wasm)', rawRemote),
      ...throughput.map((row) =>
        figure(
          `throughput through Redis Streams, ${row.hosts} host process${row.hosts > 1 ? 'es' : ''} × 1 worker (capacity ${TAKES})`,
          'calls/s',
          'higher',
          row.nuvola,
          'one local runtime, 1 worker',
          row.local,
        ),
      ),
      figure(
        'throughput through Redis Streams, 3 host processes × 1 worker',
        'calls/s',
        'higher',
        throughput[2]!.nuvola,
        'raw Redis streams request/reply, pipelined (no Wasm, one server process)',
        throughput[2]!.raw,
      ),
      figure(
        `throughput on a Redis Cluster of ${MASTERS} masters, 3 host processes × 1 worker (capacity ${TAKES})`,
        'calls/s',
        'higher',
        spread.throughput,
        'the same on one Redis',
        throughput[2]!.nuvola,
      ),
      figure('recovery of a killed host’s calls (after the nap)', 'ms', 'lower', recovery, 'hostTimeoutMs', [TIMING.hostTimeoutMs]),
    ];
    const notes = [
      `Redis round trip (PING p50) ${round(rtt)} µs; a remote call costs ${round(extraRtt)} round trips more than a local one (target ≤ 3)`,
      `recovery ${round(median(recovery))} ms with hostTimeoutMs ${TIMING.hostTimeoutMs} and heartbeatMs ${TIMING.heartbeatMs}: ${round(median(recovery) / TIMING.hostTimeoutMs)}× the timeout (target ≤ 2×)`,
      'all processes share this machine’s cores: throughput with more hosts measures the overhead, not a speed-up',
      `Redis spends ${round(redisMicros)} µs of its one core per remote call (${round(commands)} commands, INFO commandstats): one Redis tops out near ${round(1e6 / redisMicros, 0)} remote calls/s, however many hosts`,
      `on a Redis Cluster of ${MASTERS} masters (partitions from the topology: ${MASTERS}): commands per master per call ${spread.perMaster.map((c) => round(c)).join(' / ')}, the busiest ${round(100 * spread.imbalance, 0)}% above the least busy (target ≤ 20%); the calls' own commands alone ${spread.workPerMaster.map((c) => round(c)).join(' / ')}, ${round(100 * spread.workImbalance, 0)}% (the rest is heartbeats, on the master of the cluster's own tag)`,
      `CPU per remote call outside Redis: the caller ${round(callerCpu)} µs, the host processes ${round(hostCpu)} µs (all their threads; /proc)`,
      `Redis's main thread spends ${round(redisCpu)} µs of CPU per remote call (INFO cpu: commands, parsing and network together)`,
    ];
    const out = report('cluster', runs, figures, notes);
    out.rows = [
      {
        rttMicros: round(rtt),
        extraRoundTrips: round(extraRtt),
        redisMicrosPerCall: round(redisMicros),
        commandsPerCall: round(commands),
        redisCpuPerCall: round(redisCpu),
        redisCluster: spread,
        callerCpuPerCall: round(callerCpu),
        hostCpuPerCall: round(hostCpu),
        recoveryMs: recovery.map((v) => round(v)),
        throughput,
      },
    ];
    return out;
  } finally {
    await rawBaseline?.close();
    for (const rt of rts) await rt.close();
    for (const host of hosts) await host.kill();
    raw.disconnect();
    await redis.stop();
  }
}
