/**
 * Main thread. The settings of one host's membership in a cluster, as `runtime/options.ts`
 * resolves them from `createRuntime({ redis, cluster })` (it checks and defaults them; this file
 * only names them, so options need not load the cluster).
 */
import type { Grants } from './grants.js';

/** Cluster settings (`createRuntime({ redis, cluster })`); times in ms. */
export interface ClusterSettings {
  name: string;
  /** The cluster's shared secrets: the first signs, every one verifies (see seal.ts). */
  secrets: string[];
  /** What this host gives functions fetched from the registry (see grants.ts). */
  grants: Grants;
  hostId: string;
  heartbeatMs: number;
  hostTimeoutMs: number;
  capacity: number;
  idempotencyTtlMs: number;
  /** Work streams (partitions) to spread calls over; 0: from the Redis topology (see ClusterContext.join). */
  partitions: number;
}
