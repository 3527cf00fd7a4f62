// Triggers of `nuvola/serve`: cron schedules invoke their function on time, and Redis Streams
// messages (a real redis-server) invoke theirs at least once — a message whose call was cut off
// by the runtime closing stays pending and is run by the next server under the same consumer;
// and, in cluster mode, an HTTP invoke's idempotency key reaches the cluster.
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRuntime } from 'nuvola';
import { serve } from 'nuvola/serve';
import { until } from 'nuvola/testing';
import { startRedis, type TestRedis } from '../state/redis-server.js';
import { guestBytes } from './helpers.js';

let redis: TestRedis;
let client: Redis;

beforeAll(async () => {
  redis = await startRedis();
  client = new Redis(redis.url);
});
afterAll(async () => {
  client?.disconnect();
  await redis?.stop();
});

/** The replies stream's entries as objects. */
async function replies(stream: string): Promise<Record<string, string>[]> {
  const entries = await client.xrange(stream, '-', '+');
  return entries.map(([, fields]) => Object.fromEntries(fields.flatMap((_, i) => (i % 2 === 0 ? [[fields[i]!, fields[i + 1]!]] : []))));
}

describe('cron triggers', () => {
  it('invoke their function on schedule (every second, here: twice), and stop with the server', async () => {
    const rt = await createRuntime({ workers: 1, logger: () => {} });
    await rt.register('tick', guestBytes('core_hello'));
    const server = await serve(rt, { port: 0, cron: ['* * * * * * tick'] });
    try {
      await until(() => (rt.stats().byFunction['tick']?.calls ?? 0) >= 2);
      expect(rt.stats().byFunction['tick']!.errors).toEqual({});
    } finally {
      await server.close();
    }
    // Stopped with the server.
    const calls = rt.stats().byFunction['tick']!.calls;
    await new Promise((r) => setTimeout(r, 1500));
    expect(rt.stats().byFunction['tick']!.calls).toBe(calls);
    await rt.close();
  });
});

/** Polls `probe` until it holds (Redis is asked, so not with `until`). */
async function eventually(probe: () => Promise<boolean>): Promise<void> {
  while (!(await probe())) await new Promise((r) => setTimeout(r, 20));
}

describe('Redis Streams triggers', () => {
  it('invoke the function per message with its input field, add each answer to the replies stream and acknowledge it', async () => {
    const rt = await createRuntime({ workers: 2, logger: () => {} });
    await rt.register('echo', guestBytes('core_echo'));
    await rt.register('trap', guestBytes('core_unreachable'));
    const server = await serve(rt, {
      port: 0,
      redis: redis.url,
      streams: [
        { stream: 'in', function: 'echo', replies: 'out' },
        { stream: 'bad', function: 'trap', replies: 'bad-out' },
      ],
    });
    try {
      const ids = [];
      for (const word of ['abc', 'hello', 'xy']) ids.push(await client.xadd('in', '*', 'input', word));
      await client.xadd('bad', '*', 'input', 'x');
      await eventually(async () => (await client.xlen('out')) === 3 && (await client.xlen('bad-out')) === 1);
      const out = await replies('out');
      expect(out.map((r) => [r['id'], r['returnCode'], r['output']])).toEqual([
        [ids[0], '3', 'cba'],
        [ids[1], '5', 'olleh'],
        [ids[2], '2', 'yx'],
      ]);
      // A call that failed on its own is answered (its code) and acknowledged, not retried.
      expect((await replies('bad-out'))[0]).toMatchObject({ code: 'E_GUEST_TRAP' });
      await eventually(async () => ((await client.xpending('in', 'nuvola')) as [number])[0] === 0);
      expect(((await client.xpending('bad', 'nuvola')) as [number])[0]).toBe(0);
    } finally {
      await server.close();
      await rt.close();
    }
  });

  it('a message whose call was cut off stays pending and is run by the next server under the same consumer (at least once)', async () => {
    const trigger = { stream: 'naps', function: 'nap', replies: 'nap-out', consumer: 'c1' };
    const warnings: string[] = [];
    const rt1 = await createRuntime({ workers: 1, logger: (e) => warnings.push(e.message) });
    await rt1.register('nap', guestBytes('core_sleep'));
    const s1 = await serve(rt1, { port: 0, redis: redis.url, streams: [trigger] });
    const id = await client.xadd('naps', '*', 'input', '300');
    await until(() => (rt1.stats().byFunction['nap']?.running ?? 0) === 1);
    // The runtime closes mid-call: E_CLOSED, a passing failure, so no answer and no XACK.
    await rt1.close();
    await s1.close();
    expect(warnings.some((w) => w.includes('E_CLOSED'))).toBe(true);
    expect(await client.xlen('nap-out')).toBe(0);
    expect(((await client.xpending('naps', 'nuvola')) as [number])[0]).toBe(1);

    const rt2 = await createRuntime({ workers: 1, logger: () => {} });
    await rt2.register('nap', guestBytes('core_sleep'));
    const s2 = await serve(rt2, { port: 0, redis: redis.url, streams: [trigger] });
    try {
      await eventually(async () => (await client.xlen('nap-out')) === 1);
      expect(await replies('nap-out')).toEqual([{ id, returnCode: '0', output: 'slept 300' }]);
      await eventually(async () => ((await client.xpending('naps', 'nuvola')) as [number])[0] === 0);
    } finally {
      await s2.close();
      await rt2.close();
    }
  });
});

describe('cluster mode over HTTP', () => {
  it('passes nuvola-idempotency-key through: the same key answers the same call, with another input it is E_IDEMPOTENCY_CONFLICT (409)', async () => {
    const rt = await createRuntime({
      workers: 1,
      redis: redis.url,
      cluster: { name: `serve-${process.pid}`, secret: 'serve-test-cluster-secret-0123456789' },
      logger: () => {},
    });
    const server = await serve(rt, { port: 0 });
    try {
      await server.publish('echo', guestBytes('core_echo'));
      const call = (input: string, key: string): Promise<Response> =>
        fetch(`${server.url}/functions/echo/invoke`, { method: 'POST', body: input, headers: { 'nuvola-idempotency-key': key } });
      const first = await call('abc', 'k1');
      expect(first.status).toBe(200);
      expect(await first.text()).toBe('cba');
      const again = await call('abc', 'k1');
      expect(await again.text()).toBe('cba');
      const conflict = await call('other', 'k1');
      expect(conflict.status).toBe(409);
      expect(((await conflict.json()) as { code: string }).code).toBe('E_IDEMPOTENCY_CONFLICT');
    } finally {
      await server.close();
      await rt.close();
    }
  });
});
