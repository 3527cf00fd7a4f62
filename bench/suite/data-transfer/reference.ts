// ServerlessBench's data transfer in JavaScript. Input: u32 role, then the payload. Role 0 (the
// producer) answers role 1 and the payload, the consumer's input, which the main thread hands
// on; role 1 (the consumer) answers the payload's FNV-1a hash and length (two u32). Through
// Redis: role 2 stores the payload in Redis (ioredis, one client per thread) and answers role 3,
// whose consumer reads it back from there.
import { Redis } from 'ioredis';
import type { ReferenceEnv } from '../types.js';

const KEY = 'suite:transfer';
let client: Redis | undefined;

/** Closes this thread's client. */
export async function close(): Promise<void> {
  await client?.quit();
  client = undefined;
}

function redis(env: ReferenceEnv): Redis {
  if (env.redisUrl === undefined) throw new Error('transfer-redis needs a Redis (env.redisUrl)');
  client ??= new Redis(env.redisUrl);
  return client;
}

const role = (r: number): Uint8Array => new Uint8Array(new Uint32Array([r]).buffer);

export function fnv1a(bytes: Uint8Array): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i]!, 0x01000193);
  return h >>> 0;
}

function digest(payload: Uint8Array): Uint8Array {
  return new Uint8Array(new Uint32Array([fnv1a(payload), payload.length]).buffer);
}

export async function reference(input: Uint8Array, env: ReferenceEnv): Promise<Uint8Array> {
  const r = new DataView(input.buffer, input.byteOffset, 4).getUint32(0, true);
  if (r === 0) {
    const out = input.slice();
    new DataView(out.buffer).setUint32(0, 1, true);
    return out;
  }
  if (r === 2) {
    await redis(env).set(KEY, Buffer.from(input.buffer, input.byteOffset + 4, input.byteLength - 4));
    return role(3);
  }
  if (r === 3) return digest((await redis(env).getBuffer(KEY)) ?? new Uint8Array(0));
  return digest(input.subarray(4));
}
