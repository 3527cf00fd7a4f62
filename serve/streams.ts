/**
 * Main thread. Redis Streams triggers: every message added to a stream invokes a function with
 * the message's `input` field as its input, through a consumer group, at least once: a message
 * is acknowledged (`XACK`) only once its call was answered, with a result or with an error of
 * the call's own; a call refused for a passing reason (runtime closing, worker lost, no room,
 * the cluster or state tier away) leaves the message pending, and it is read again from the
 * consumer's pending list after a pause (and after a restart under the same consumer name).
 * The call's idempotency key is `<stream>:<message id>` in cluster mode, so a redelivered
 * message whose call did complete is answered from the cluster's record, not run twice.
 * With `replies`, each answer is added to that stream (`id`, then `returnCode` and `output`,
 * or `code` and `message`).
 */
import { Redis } from 'ioredis';
import { hostname } from 'node:os';
import { ErrorCode, InvalidOptionError, type NuvolaError } from '../runtime/errors.js';

/** One stream trigger. */
export interface StreamTrigger {
  /** The stream read (created, empty, if missing). */
  stream: string;
  /** The function each message invokes. */
  function: string;
  /** Consumer group; default `'nuvola'`. Servers in one group share the messages. */
  group?: string;
  /** This server's consumer name in the group; default `<hostname>-<pid>`. */
  consumer?: string;
  /** A stream each answer is added to; default none. */
  replies?: string;
}

const NAME = /^[A-Za-z0-9_.:/-]{1,128}$/;
const KEYS = ['stream', 'function', 'group', 'consumer', 'replies'];

/** Checks a stream trigger config; `E_INVALID_TRIGGER` naming the field otherwise. */
export function checkStreamTrigger(value: unknown, path: string): StreamTrigger {
  const bad = (field: string, why: string): never => {
    throw new InvalidOptionError(ErrorCode.INVALID_TRIGGER, `stream trigger ${path}${field}: ${why}`, { path: `${path}${field}` });
  };
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    return bad('', 'expected an object { stream, function, group?, consumer?, replies? }');
  const t = value as Record<string, unknown>;
  for (const key of Object.keys(t)) if (!KEYS.includes(key)) bad(`.${key}`, `unknown field; known: ${KEYS.join(', ')}`);
  for (const key of KEYS) {
    const v = t[key];
    if (v === undefined && (key === 'stream' || key === 'function')) bad(`.${key}`, 'missing');
    if (v !== undefined && (typeof v !== 'string' || !NAME.test(v)))
      bad(`.${key}`, `expected a name of 1 to 128 of [A-Za-z0-9_.:/-], got ${JSON.stringify(v)}`);
  }
  return value as StreamTrigger;
}

/** Errors after which the message stays pending and is read again (the call may succeed later). */
const PASSING = new Set<string>([
  ErrorCode.CLOSED,
  ErrorCode.WORKER_LOST,
  ErrorCode.CLUSTER_UNAVAILABLE,
  ErrorCode.QUEUE_FULL,
  ErrorCode.INSTANCE_LIMIT,
  ErrorCode.STATE_UNAVAILABLE,
]);

/** How long a read blocks, and the pause before pending messages are read again, in ms. */
const BLOCK_MS = 1000;
const RETRY_MS = 1000;

export type StreamInvoke = (
  fn: string,
  input: Uint8Array,
  options: { idempotencyKey?: string },
) => Promise<{ output: Uint8Array; returnCode: number }>;

/** Starts one reader per trigger; resolves (once every group exists) with what stops them. */
export async function startStreams(
  triggers: readonly StreamTrigger[],
  redisUrl: string,
  invoke: StreamInvoke,
  clustered: boolean,
  warn: (message: string) => void,
): Promise<() => Promise<void>> {
  const readers = await Promise.all(triggers.map((t) => startReader(t, redisUrl, invoke, clustered, warn)));
  return async () => {
    await Promise.all(readers.map((stop) => stop()));
  };
}

async function startReader(
  t: StreamTrigger,
  redisUrl: string,
  invoke: StreamInvoke,
  clustered: boolean,
  warn: (message: string) => void,
): Promise<() => Promise<void>> {
  const group = t.group ?? 'nuvola';
  const consumer = t.consumer ?? `${hostname()}-${process.pid}`;
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: null, lazyConnect: true });
  await redis.connect();
  try {
    await redis.xgroup('CREATE', t.stream, group, '$', 'MKSTREAM');
  } catch (err) {
    if (!String((err as Error).message).startsWith('BUSYGROUP')) {
      redis.disconnect();
      throw err;
    }
  }
  let stopped = false;
  const loop = (async () => {
    // '0': this consumer's pending messages first (left by a restart or a passing failure), then new ones ('>').
    let from = '0';
    while (!stopped) {
      let reply: [Buffer, [Buffer, Buffer[]][]][] | null;
      try {
        reply = (await redis.xreadgroupBuffer(
          'GROUP',
          group,
          consumer,
          'COUNT',
          16,
          'BLOCK',
          from === '0' ? 1 : BLOCK_MS,
          'STREAMS',
          t.stream,
          from,
        )) as [Buffer, [Buffer, Buffer[]][]][] | null;
      } catch (err) {
        if (stopped) break;
        warn(`stream trigger ${t.stream}: ${(err as Error).message}`);
        await pause(RETRY_MS, () => stopped);
        continue;
      }
      const messages = reply?.[0]?.[1] ?? [];
      if (from === '0' && messages.length === 0) {
        from = '>';
        continue;
      }
      let retry = false;
      for (const [idBuf, fields] of messages) {
        if (stopped) break;
        const id = idBuf.toString();
        if (!(await handle(id, fields))) retry = true;
      }
      if (retry) {
        from = '0';
        await pause(RETRY_MS, () => stopped);
      }
    }
  })();

  /** Runs one message's call; true when it is done with (acknowledged), false to read it again. */
  async function handle(id: string, fields: Buffer[]): Promise<boolean> {
    let input: Uint8Array = new Uint8Array(0);
    for (let i = 0; i + 1 < fields.length; i += 2) if (fields[i]!.toString() === 'input') input = fields[i + 1]!;
    let answer: (string | Buffer)[];
    try {
      const result = await invoke(t.function, input, clustered ? { idempotencyKey: `${t.stream}:${id}` } : {});
      answer = ['id', id, 'returnCode', String(result.returnCode), 'output', Buffer.from(result.output)];
    } catch (err) {
      const e = err as NuvolaError;
      if (PASSING.has(e.code)) {
        warn(`stream trigger ${t.stream} ${id} → ${t.function}: ${e.code}; read again in ${RETRY_MS} ms`);
        return false;
      }
      warn(`stream trigger ${t.stream} ${id} → ${t.function}: ${e.code ?? 'error'}: ${e.message}`);
      answer = ['id', id, 'code', String(e.code), 'message', e.message];
    }
    try {
      if (t.replies !== undefined) await redis.xadd(t.replies, '*', ...answer);
      await redis.xack(t.stream, group, id);
      return true;
    } catch (err) {
      warn(`stream trigger ${t.stream} ${id}: could not acknowledge (${(err as Error).message}); it will be read again`);
      return false;
    }
  }

  return async () => {
    stopped = true;
    // Ends a blocked read at once; the loop sees `stopped`.
    redis.disconnect();
    await loop;
  };
}

function pause(ms: number, stop: () => boolean): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    const poll = setInterval(() => {
      if (stop()) {
        clearTimeout(timer);
        clearInterval(poll);
        resolve();
      }
    }, 50);
    timer.unref?.();
    setTimeout(() => clearInterval(poll), ms).unref?.();
  });
}
