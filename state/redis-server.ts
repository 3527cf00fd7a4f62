// A throwaway redis-server on a free loopback port, for tests, benchmarks and `nuvola cluster up`. Missing
// redis-server is a loud failure (`npm test` installs it first), never a skip.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestRedis {
  url: string;
  port: number;
  stop(): Promise<void>;
  start(): Promise<void>;
  /** Sends a signal to the server (SIGSTOP: it stops answering without closing connections; SIGCONT). */
  signal(signal: NodeJS.Signals): void;
}

async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  server.close();
  await once(server, 'close');
  return port;
}

/** Starts a redis-server; `args` are extra server flags (e.g. `['--requirepass', 'x']`). */
export async function startRedis(args: string[] = []): Promise<TestRedis> {
  if (spawnSync('redis-server', ['--version']).status !== 0) {
    throw new Error(
      'redis-server is not installed; the state tests and `nuvola bench state` need a real Redis: apt-get install -y redis-server',
    );
  }
  const port = await freePort();
  let child: ChildProcess | undefined;
  const redis: TestRedis = {
    url: `redis://127.0.0.1:${port}`,
    port,
    async start() {
      const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', ...args], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      child = proc;
      let out = '';
      await new Promise<void>((resolve, reject) => {
        proc.stdout!.on('data', (chunk: Buffer) => {
          out += chunk.toString();
          if (out.includes('Ready to accept connections')) resolve();
        });
        proc.once('exit', (code) => reject(new Error(`redis-server exited with ${code}: ${out}`)));
      });
    },
    signal(signal) {
      child?.kill(signal);
    },
    async stop() {
      const proc = child;
      if (proc === undefined || proc.exitCode !== null) return;
      child = undefined;
      const exited = once(proc, 'exit');
      proc.kill('SIGKILL');
      await exited;
    },
  };
  await redis.start();
  return redis;
}

export interface TestRedisCluster {
  /** The nodes' URLs (every one a master; hash slots split evenly). */
  urls: string[];
  stop(): Promise<void>;
}

/**
 * A throwaway Redis Cluster of `masters` nodes on loopback (no replicas): redis-server with
 * `--cluster-enabled yes` on free ports, joined by `redis-cli --cluster create`.
 */
export async function startRedisCluster(masters = 3): Promise<TestRedisCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'nuvola-redis-cluster-'));
  const nodes: TestRedis[] = [];
  const stop = async (): Promise<void> => {
    for (const node of nodes) await node.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (let i = 0; i < masters; i++) {
      nodes.push(await startRedis(['--cluster-enabled', 'yes', '--cluster-config-file', join(dir, `nodes-${i}.conf`), '--dir', dir]));
    }
    const addresses = nodes.map((n) => `127.0.0.1:${n.port}`);
    const created = spawnSync('redis-cli', ['--cluster', 'create', ...addresses, '--cluster-replicas', '0', '--cluster-yes'], {
      encoding: 'utf8',
    });
    if (created.status !== 0) throw new Error(`redis-cli --cluster create failed: ${created.stdout}${created.stderr}`);
    // Every node must see the whole cluster before clients use it.
    for (let attempt = 0; ; attempt++) {
      const ok = nodes.every((n) =>
        spawnSync('redis-cli', ['-p', String(n.port), 'cluster', 'info'], { encoding: 'utf8' }).stdout.includes('cluster_state:ok'),
      );
      if (ok) break;
      if (attempt > 100) throw new Error('the Redis Cluster did not reach cluster_state:ok within 10 s');
      await new Promise((r) => setTimeout(r, 100));
    }
    return { urls: nodes.map((n) => n.url), stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
