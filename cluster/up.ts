/**
 * Main thread. `nuvola cluster up N`: a local cluster to try — a throwaway redis-server on
 * loopback (unless `redisUrl` is given), N host processes, and a front runtime in this process
 * (capacity 0: it only sends) that registers two functions and runs a demo across the hosts:
 * a burst of calls spread over them, then a host killed with calls in flight whose calls the
 * others take over.
 */
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { buildGuest, createRuntime } from '../runtime/index.js';
import { startRedis, type TestRedis } from '../state/redis-server.js';
import { secretFromEnv, SECRET_ENV, startHost, type HostProcess } from './spawn.js';

const hello = fileURLToPath(new URL('../../guest/examples/hello.ts', import.meta.url));
const nap = fileURLToPath(new URL('../../bench/guests/nap.ts', import.meta.url));

export interface ClusterUpOptions {
  /** An existing Redis; default: start one on a free loopback port (redis-server must be installed). */
  redisUrl?: string;
  /** Calls in the burst. Default 400. */
  calls?: number;
  /** The cluster's secret. Default: NUVOLA_CLUSTER_SECRET, else a random one for this run. */
  secret?: string | string[];
}

export async function clusterUp(hosts: number, options: ClusterUpOptions = {}, print: (line: string) => void = console.log): Promise<void> {
  let redis: TestRedis | undefined;
  const url = options.redisUrl ?? (redis = await startRedis()).url;
  const secret = options.secret ?? secretFromEnv();
  const cluster = {
    name: `up-${process.pid}`,
    heartbeatMs: 200,
    hostTimeoutMs: 1000,
    secret: secret ?? randomBytes(32).toString('hex'),
  };
  const started: HostProcess[] = [];
  try {
    print(
      `Redis at ${url}; cluster '${cluster.name}' (heartbeat every ${cluster.heartbeatMs} ms, a host is dead after ${cluster.hostTimeoutMs} ms; ${secret === undefined ? `a random secret for this run — set ${SECRET_ENV} to share one with other hosts` : `the secret from ${options.secret !== undefined ? 'the options' : SECRET_ENV}`})`,
    );
    for (let i = 0; i < hosts; i++) started.push(await startHost({ workers: 1, redis: url, cluster: { ...cluster, capacity: 4 } }));
    print(`started ${hosts} host process${hosts === 1 ? '' : 'es'}: ${started.map((h) => `${h.id} (pid ${h.child.pid})`).join(', ')}`);
    const front = await createRuntime({ workers: 1, redis: url, cluster: { ...cluster, capacity: 0 }, logger: () => {} });
    try {
      await front.register('hello', await buildGuest(hello));
      await front.register('nap', await buildGuest(nap));
      print(`the front runtime (capacity 0: it only sends) registered 'hello' and 'nap'; the hosts fetch them from Redis on first use`);

      const calls = options.calls ?? 400;
      const t = performance.now();
      const results = await Promise.all(Array.from({ length: calls }, (_, i) => front.invoke('hello', `call ${i}`)));
      const ms = performance.now() - t;
      const perHost = new Map<string, number>();
      for (const r of results) perHost.set(r.host!, (perHost.get(r.host!) ?? 0) + 1);
      print(
        `${calls} calls of 'hello' in ${ms.toFixed(0)} ms (${((calls / ms) * 1000).toFixed(0)} calls/s), first answer "${new TextDecoder().decode(results[0]!.output)}"; by host:`,
      );
      for (const [id, n] of perHost) print(`  ${id}: ${n}`);

      if (started.length >= 2) {
        const victim = started[0]!;
        const sent = Array.from({ length: 4 * hosts }, (_, i) =>
          front.invoke('nap', '1000', { idempotencyKey: `up-${process.pid}-${i}`, timeoutMs: 30_000 }),
        );
        await new Promise((r) => setTimeout(r, 300));
        const view = await front.cluster();
        const held = view.hosts.find((h) => h.id === victim.id)?.inflight ?? 0;
        const killed = performance.now();
        await victim.kill();
        started.shift();
        print(`killed ${victim.id} (SIGKILL) while it held ${held} of ${sent.length} one-second naps`);
        const done = await Promise.all(sent.map((p) => p.then((r) => ({ host: r.host!, at: performance.now() - killed }))));
        const late = done.filter((d) => d.at > 1000);
        print(
          `all ${done.length} naps answered, once each; ${late.length} finished after the kill + 1 s (taken over by ${[...new Set(late.map((d) => d.host))].join(', ') || 'nobody'}), the last ${Math.max(...done.map((d) => d.at)).toFixed(0)} ms after the kill`,
        );
        const again = await front.invoke('nap', '1000', { idempotencyKey: `up-${process.pid}-0` });
        print(`retried with its idempotency key, nap 0 answers from the record in ${again.durationMs.toFixed(1)} ms (host ${again.host})`);
      }
      print(
        `live hosts now: ${(await front.cluster()).hosts.map((h) => `${h.id} (capacity ${h.capacity}, completed ${h.completed})`).join(', ')}`,
      );
    } finally {
      await front.close();
    }
  } finally {
    for (const h of started) await h.stop();
    await redis?.stop();
  }
}
