// Faults of the global tier with a real redis-server stopped and restarted mid-test, and two
// runtimes in two processes sharing one Redis.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRuntime, type NuvolaError, type Runtime } from 'nuvola';
import { guestBytes, guestPath, runScript } from './helpers.js';
import { startRedis, type TestRedis } from '../state/redis-server.js';

let redis: TestRedis;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(() => redis?.stop());

async function failure(p: Promise<unknown>): Promise<NuvolaError> {
  return p.then(
    () => {
      throw new Error('expected a failure');
    },
    (e: NuvolaError) => e,
  );
}

/** Retries `op` while it fails with E_STATE_UNAVAILABLE (the client reconnecting), up to ~5 s. */
async function untilRedisIsBack(op: () => Promise<unknown>): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await op();
      return;
    } catch (err) {
      if ((err as NuvolaError).code !== 'E_STATE_UNAVAILABLE' || attempt > 200) throw err;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }
}

describe('global tier faults', () => {
  let rt: Runtime;

  beforeAll(async () => {
    rt = await createRuntime({ workers: 2, redis: redis.url, logger: () => {} });
    await rt.register('ops', guestBytes('state_ops'));
  });
  afterAll(() => rt.close());

  it('fails global operations with E_STATE_UNAVAILABLE while Redis is down, keeps local state, and loses nothing', async () => {
    await rt.invoke('ops', 'write survivor 16');
    await rt.invoke('ops', 'push survivor');
    await redis.stop();
    // Local writes and reads go on.
    await rt.invoke('ops', 'writeAt survivor 4');
    const local = await rt.invoke('ops', 'read survivor');
    expect([...local.output.subarray(4, 8)]).toEqual([0, 0, 0, 0]);
    // Global operations fail with a code, in the guest and on the host.
    expect((await failure(rt.invoke('ops', 'pushPartial survivor'))).code).toBe('E_STATE_UNAVAILABLE');
    expect((await failure(rt.state.pushPartial('survivor'))).code).toBe('E_STATE_UNAVAILABLE');
    expect((await failure(rt.invoke('ops', 'size unknown-while-down'))).code).toBe('E_STATE_UNAVAILABLE');
    await redis.start();
    // The client reconnects by itself; the dirty chunk is still dirty and goes out now.
    await untilRedisIsBack(() => rt.invoke('ops', 'pushPartial survivor'));
    // Redis restarted empty (no persistence): the partial push carried only the dirty chunk,
    // which here is the whole 16-byte value.
    const other = await createRuntime({ workers: 1, redis: redis.url, logger: () => {} });
    try {
      await other.state.pull('survivor');
      const value = await other.state.read('survivor');
      expect([...value]).toEqual([...local.output]);
    } finally {
      await other.close();
    }
  });

  it('a push cut off mid-way by Redis going away fails with a code and keeps the data dirty', async () => {
    const big = 64 * 1024 * 1024;
    await rt.state.write('midway', new Uint8Array(big).fill(9));
    const pushing = rt.state.push('midway');
    await new Promise((resolve) => setTimeout(resolve, 5));
    await redis.stop();
    expect((await failure(pushing)).code).toBe('E_STATE_UNAVAILABLE');
    await redis.start();
    await untilRedisIsBack(() => rt.state.pushPartial('midway'));
    // Redis came back empty; the dirty chunks were all still dirty, so the partial push sent the whole value.
    const other = await createRuntime({ workers: 1, redis: redis.url, logger: () => {} });
    try {
      expect(await other.state.size('midway')).toBe(big);
      expect((await other.state.readAt('midway', big - 1, 1))[0]).toBe(9);
    } finally {
      await other.close();
    }
  });

  it('starts with Redis unreachable and works once it is up', async () => {
    await redis.stop();
    const late = await createRuntime({ workers: 1, redis: redis.url, logger: () => {} });
    try {
      await late.register('ops', guestBytes('state_ops'));
      await late.invoke('ops', 'write early 4');
      expect((await failure(late.invoke('ops', 'push early'))).code).toBe('E_STATE_UNAVAILABLE');
      await redis.start();
      await untilRedisIsBack(() => late.state.push('early'));
      expect(await late.state.size('early')).toBe(4);
    } finally {
      await late.close();
    }
  });
});

describe('Redis with a password', () => {
  it('connects with the password in the URL, and reports a wrong one as E_STATE_UNAVAILABLE', async () => {
    const secured = await startRedis(['--requirepass', 's3cret']);
    try {
      const good = await createRuntime({ workers: 1, redis: { url: `redis://:s3cret@127.0.0.1:${secured.port}` }, logger: () => {} });
      try {
        await good.state.write('pw', new Uint8Array([1]));
        await good.state.push('pw');
        expect(await good.state.size('pw')).toBe(1);
      } finally {
        await good.close();
      }
      const bad = await createRuntime({ workers: 1, redis: `redis://:wrong@127.0.0.1:${secured.port}`, logger: () => {} });
      try {
        await bad.state.write('pw2', new Uint8Array([1]));
        expect((await failure(bad.state.push('pw2'))).code).toBe('E_STATE_UNAVAILABLE');
      } finally {
        await bad.close();
      }
    } finally {
      await secured.stop();
    }
  });
});

describe('two processes sharing one Redis', () => {
  it("each sees the other's pushed state", async () => {
    const rt = await createRuntime({ workers: 1, redis: redis.url, logger: () => {} });
    try {
      await rt.register('ops', guestBytes('state_ops'));
      await rt.state.write('from-parent', new Uint8Array([4, 5, 6]));
      await rt.state.push('from-parent');
      const script = `
        import { createRuntime } from 'nuvola';
        import { readFileSync } from 'node:fs';
        const rt = await createRuntime({ workers: 1, redis: ${JSON.stringify(redis.url)}, logger: (e) => console.error(e.message) });
        await rt.register('ops', readFileSync(${JSON.stringify(guestPath('state_ops'))}));
        const seen = await rt.invoke('ops', 'read from-parent');
        await rt.invoke('ops', 'write from-child 5');
        await rt.invoke('ops', 'push from-child');
        console.log(JSON.stringify([...seen.output]));
        await rt.close();
      `;
      const child = await runScript(script);
      expect(child.stderr).toBe('');
      expect(child.code).toBe(0);
      expect(JSON.parse(child.stdout.trim())).toEqual([4, 5, 6]);
      const mine = await rt.invoke('ops', 'read from-child');
      expect([...mine.output]).toEqual([1, 8, 15, 22, 29]);
    } finally {
      await rt.close();
    }
  });
});
