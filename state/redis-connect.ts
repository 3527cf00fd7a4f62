/**
 * Main thread. One way to open a Redis connection for the global tier and for cluster mode:
 * a single server (`redis://…`) or a Redis Cluster (`{ cluster: [seed URLs] }`, through
 * ioredis' Cluster client, which follows slots and redirections). Callers keep every script's
 * keys under one hash tag, so each script runs on one slot in either case.
 */
import { createRequire } from 'node:module';
import type { ConnectionOptions } from 'node:tls';
import type * as IORedis from 'ioredis';
import type { Redis } from 'ioredis';

/**
 * ioredis, loaded by the first connection rather than with the package: it is most of what
 * `import('nuvola')` would otherwise cost (~65 ms), and an embedded runtime without Redis never
 * needs it. A CommonJS package, so `require` keeps `connectRedis` synchronous.
 */
let ioredis: typeof IORedis | undefined;
function loadIoredis(): typeof IORedis {
  ioredis ??= createRequire(import.meta.url)('ioredis') as typeof IORedis;
  return ioredis;
}

/** Where nuvola connects: a URL (`redis://`, or `rediss://` for TLS), a URL with options, or a Redis Cluster's seed nodes. */
export type RedisTarget =
  | string
  | { url: string; tls?: ConnectionOptions; password?: string; username?: string }
  | { cluster: string[]; tls?: ConnectionOptions; password?: string; username?: string };

export interface ConnectOptions {
  /** Queue commands while disconnected (true) or fail them at once (false). */
  offlineQueue: boolean;
  /** Retries of a command across reconnections; null: until it is sent. */
  maxRetriesPerRequest: number | null;
  connectionName?: string;
}

/** A client for `target`: a Redis, or a Cluster that speaks the same commands. */
export function connectRedis(target: RedisTarget, options: ConnectOptions): Redis {
  const { Cluster, Redis } = loadIoredis();
  const retry = (times: number): number => Math.min(50 * times, 1000);
  const common = {
    enableOfflineQueue: options.offlineQueue,
    maxRetriesPerRequest: options.maxRetriesPerRequest,
    ...(options.connectionName !== undefined ? { connectionName: options.connectionName } : {}),
  };
  if (typeof target === 'string') return new Redis(target, { ...common, retryStrategy: retry });
  if ('url' in target) {
    const { url, ...extra } = target;
    return new Redis(url, { ...extra, ...common, retryStrategy: retry });
  }
  const { cluster, ...auth } = target;
  const nodes = cluster.map((u) => {
    const parsed = new URL(u);
    return { host: parsed.hostname, port: Number(parsed.port || 6379) };
  });
  const client = new Cluster(nodes, {
    enableOfflineQueue: options.offlineQueue,
    clusterRetryStrategy: retry,
    redisOptions: { ...auth, ...common },
  });
  // Same commands, scripts and events as a single Redis: callers use the Redis type.
  return client as unknown as Redis;
}
