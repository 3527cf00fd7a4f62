// ServerlessBench's data transfer: a payload from one function to another, through the local
// state tier, through messages between the ranks of a group, and through Redis (the global tier).
import { chainRun, sameBytes, type NuvolaRun, type Size, type TaskResult, type Workload } from '../types.js';
import { Xorshift32 } from '../random.js';
import type { Runtime } from 'nuvola';

const BYTES: Record<Size, number> = { test: 64 << 10, small: 1 << 20, large: 16 << 20 };

/** The guest's modes (guests/transfer.ts). */
export const MODE = { state: 1, redis: 3, messages: 5 } as const;

function payload(mode: number, size: Size): Uint8Array {
  const r = new Xorshift32(77);
  const bytes = new Uint8Array(4 + BYTES[size]);
  new DataView(bytes.buffer).setUint32(0, mode, true);
  const words = new Uint32Array(bytes.buffer, 4, BYTES[size] >>> 2);
  for (let i = 0; i < words.length; i++) words[i] = r.next();
  return bytes;
}

/**
 * The JavaScript side: the producer's answer comes back to the main thread, which hands it to
 * the consumer; for `transfer-redis` the producer stores it in Redis and the consumer reads it
 * from there (ioredis).
 */
const js =
  (producerRole: number) =>
  async (task: (name: string, input: Uint8Array) => Promise<TaskResult>, input: Uint8Array): Promise<TaskResult> => {
    const producer = input.slice();
    new DataView(producer.buffer).setUint32(0, producerRole, true);
    const a = await task('data-transfer', producer);
    const b = await task('data-transfer', a.output);
    return { output: b.output, execMs: a.execMs + b.execMs, heapBytes: Math.max(a.heapBytes, b.heapBytes) };
  };

async function group(rt: Runtime, input: Uint8Array): Promise<NuvolaRun> {
  const ranks = await rt.invokeGroup('transfer', 2, input);
  return {
    output: ranks[0]!.output,
    usages: ranks.flatMap((r) => (r.usage === undefined ? [] : [r.usage])),
    cold: ranks[0]!.cold,
  };
}

const common = { folder: 'data-transfer', guests: ['transfer'], js: js(0), check: sameBytes('data-transfer') };

export const viaState: Workload = {
  ...common,
  name: 'transfer-state',
  origin: 'ServerlessBench data transfer (local state)',
  summary: 'a payload from a producer to a consumer it calls, through a key of the local state tier',
  input: (size) => payload(MODE.state, size),
  nuvola: (rt, input) => chainRun(rt, 'transfer', input),
};

export const viaMessages: Workload = {
  ...common,
  name: 'transfer-messages',
  origin: 'ServerlessBench data transfer (messages)',
  summary: 'the payload from rank 0 to rank 1 of a group (comm.send / recv), the hash sent back',
  input: (size) => payload(MODE.messages, size),
  nuvola: group,
};

export const viaRedis: Workload = {
  ...common,
  name: 'transfer-redis',
  origin: 'ServerlessBench data transfer (Redis)',
  summary: 'the payload pushed to the Redis tier by the producer, pulled by the consumer',
  redis: true,
  js: js(2),
  input: (size) => payload(MODE.redis, size),
  nuvola: (rt, input) => chainRun(rt, 'transfer', input),
};
