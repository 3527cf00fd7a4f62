import { describe, expect, it } from 'vitest';
import type { NuvolaError, Runtime } from 'nuvola';
import { until } from 'nuvola/testing';
import { closedAfterEach, guestBytes, text, uninstrumentedLoop } from './helpers.js';

const track = closedAfterEach();

async function start(options: Parameters<typeof track>[0] = {}): Promise<Runtime> {
  return (await track({ workers: 2, ...options })).rt;
}

const i32 = (n: number): Uint8Array => new Uint8Array(new Int32Array([n]).buffer);

describe('chaining: acceptance cases', () => {
  it('fans out three calls that check [k, k+1, k+2]; the third chains [4, 5, 6]; all return 0', async () => {
    const rt = await start();
    await rt.register('check', guestBytes('chain_check'));
    await rt.register('fanout', guestBytes('chain_fanout'));
    const result = await rt.invoke('fanout', undefined, { trace: true });
    expect(result.returnCode).toBe(0);
    // The call tree: the root, its three calls, and the nested one under the third.
    const calls = result.calls!;
    expect(calls.map((c) => c.function)).toEqual(['fanout', 'check', 'check', 'check', 'check']);
    const root = calls[0]!;
    expect(root.parent).toBeUndefined();
    const children = calls.filter((c) => c.parent === root.id);
    expect(children).toHaveLength(3);
    const nested = calls.filter((c) => c.parent !== undefined && c.parent !== root.id);
    expect(nested).toHaveLength(1);
    expect(children.map((c) => c.id)).toContain(nested[0]!.parent);
    expect(calls.every((c) => c.returnCode === 0 && c.error === undefined && c.durationMs >= 0)).toBe(true);
  });

  it('lets a parent wait for two children and compare their outputs', async () => {
    const rt = await start();
    await rt.register('say', guestBytes('chain_say'));
    await rt.register('outputs', guestBytes('chain_outputs'));
    const result = await rt.invoke('outputs');
    expect(text(result.output)).toBe('expected A|longer expected B');
    expect(result.returnCode).toBe(0);
  });

  it('has two chained appenders add 0..99 and 0..199 to one key: 300 elements, sum 24 850', async () => {
    const rt = await start();
    await rt.register('appender', guestBytes('chain_appender'));
    await rt.register('appenders', guestBytes('chain_appenders'));
    const result = await rt.invoke('appenders');
    expect(result.returnCode).toBe(0);
    expect(text(result.output)).toBe('300 24850');
  });

  it('estimates pi with chained Monte Carlo workers', async () => {
    const rt = await start();
    await rt.register('piWorker', guestBytes('chain_pi_worker'));
    await rt.register('pi', guestBytes('chain_pi'));
    const result = await rt.invoke('pi', i32(4));
    expect(result.returnCode).toBe(0);
    expect(text(result.output)).toMatch(/^Pi estimate: 3\.1\d* from 4 workers$/);
  });
});

describe('chaining: depth and width on 2 workers', () => {
  it('completes a chain 100 calls deep (each waiting caller suspends, no worker blocks)', async () => {
    const rt = await start();
    await rt.register('deep', guestBytes('bench_deep'));
    const result = await rt.invoke('deep', i32(100));
    expect(result.returnCode).toBe(100);
  });

  it('completes a fan-out of 1000 calls', async () => {
    const rt = await start();
    await rt.register('leaf', guestBytes('bench_leaf'));
    await rt.register('fan', guestBytes('chain_fan'));
    const result = await rt.invoke('fan', i32(1000));
    expect(result.returnCode).toBe(1000);
  });
});

describe('chaining: faults', () => {
  it('reports a callee that is unknown, traps or times out to the caller as chain.FAILED with the coded error', async () => {
    const rt = await start();
    await rt.register('faults', guestBytes('chain_faults'));
    await rt.register('trapper', guestBytes('core_unreachable'));
    await rt.register('sleeper', guestBytes('core_sleep'), { timeoutMs: 50 });
    const outcome = async (mode: string): Promise<string> => text((await rt.invoke('faults', mode)).output);
    expect(await outcome('unknown')).toMatch(/^FAILED E_UNKNOWN_FUNCTION: .*'nobody'/);
    expect(await outcome('trap')).toMatch(/^FAILED E_GUEST_TRAP: /);
    expect(await outcome('slow')).toMatch(/^FAILED E_TIMEOUT: /);
    // The runtime serves on.
    expect(await outcome('trap')).toMatch(/^FAILED E_GUEST_TRAP: /);
  });

  it('stops a callee that spins past its timeout at its next check; its caller, on the same worker, goes on', async () => {
    const rt = await start({ workers: 1 });
    await rt.register('faults', guestBytes('chain_faults'));
    await rt.register('looper', guestBytes('core_loop'), { timeoutMs: 100 });
    expect(text((await rt.invoke('faults', 'loop')).output)).toMatch(/^FAILED E_TIMEOUT: .*interrupted/);
    expect(rt.stats()).toMatchObject({ workerRestarts: 0, interrupts: 1, timeoutTerminations: 0 });
    expect(text((await rt.invoke('faults', 'unknown')).output)).toMatch(/^FAILED E_UNKNOWN_FUNCTION/);
  });

  it('stops an uninstrumented callee that spins past its timeout with its worker, losing the caller there too', async () => {
    const rt = await start({ workers: 1 });
    await rt.register('faults', guestBytes('chain_faults'));
    await rt.register('looper', await uninstrumentedLoop(), { timeoutMs: 100 });
    // Code without checks can only be stopped with its thread; with one worker the caller shares it.
    const err = (await rt.invoke('faults', 'loop').catch((e: unknown) => e)) as NuvolaError;
    expect(err.code).toBe('E_WORKER_LOST');
    await until(() => rt.stats().workerRestarts === 1);
    expect(rt.stats().timeoutTerminations).toBe(1);
    expect(text((await rt.invoke('faults', 'unknown')).output)).toMatch(/^FAILED E_UNKNOWN_FUNCTION/);
  });

  it('traps a guest that waits on an id it did not get from chain.call', async () => {
    const rt = await start();
    await rt.register('faults', guestBytes('chain_faults'));
    const err = (await rt.invoke('faults', 'badid').catch((e: unknown) => e)) as NuvolaError;
    expect(err.code).toBe('E_CHAIN_ID');
    expect(err.message).toMatch(/chain id 7/);
  });
});

describe('chaining: what a caller holds (maxChainedOutputBytes)', () => {
  it('fails the chained calls whose outputs would make their caller hold more than the cap, and only those', async () => {
    const rt = await start({ maxChainedOutputBytes: 200 * 1024 });
    await rt.register('blob', guestBytes('chain_blob'));
    await rt.register('blobs', guestBytes('chain_blobs'));
    // Five outputs of 64 KiB: three fit in 200 KiB, whichever arrive first; the rest fail.
    for (let round = 0; round < 2; round++) {
      const result = await rt.invoke('blobs', '5 64');
      expect(result.returnCode).toBe(0);
      const each = text(result.output).split(',');
      expect(each.filter((e) => e === String(64 * 1024))).toHaveLength(3);
      expect(each.filter((e) => e === 'E_CHAIN_OUTPUT_LIMIT')).toHaveLength(2);
    }
    expect(rt.stats().limits.maxChainedOutputBytes).toBe(200 * 1024);
  });

  it('lets small outputs through a small cap and fails a single output over it', async () => {
    const rt = await start({ maxChainedOutputBytes: 1024 });
    await rt.register('blob', guestBytes('chain_blob'));
    await rt.register('say', guestBytes('chain_say'));
    await rt.register('outputs', guestBytes('chain_outputs'));
    // Small outputs still pass under a small cap.
    expect(text((await rt.invoke('outputs')).output)).toBe('expected A|longer expected B');
    await rt.register('blobs', guestBytes('chain_blobs'));
    expect(text((await rt.invoke('blobs', '1 2')).output)).toBe('E_CHAIN_OUTPUT_LIMIT');
  });
});

describe('chaining: callees', () => {
  it('stateKeys do not carry over a chain; with callees a function may call only those (others trap with E_CHAIN_DENIED)', async () => {
    const rt = await start();
    await rt.register('say', guestBytes('chain_say'));
    await rt.register('writer', guestBytes('state_ops'));
    // Without callees, a function limited to 'public' reaches 'secret-a' through a wider callee.
    await rt.register('open', guestBytes('chain_proxy'), { stateKeys: ['public'] });
    expect(text((await rt.invoke('open', 'writer write secret-a 2')).output)).toBe('0 ');
    expect(await rt.state.size('secret-a')).toBe(2);
    await rt.register('narrow', guestBytes('chain_proxy'), { stateKeys: ['public'], callees: ['say'] });
    expect(rt.describe('narrow').callees).toEqual(['say']);
    expect(text((await rt.invoke('narrow', 'say hello')).output)).toBe('0 hello');
    const err = (await rt.invoke('narrow', 'writer write secret-b 2').catch((e: unknown) => e)) as NuvolaError;
    expect(err.code).toBe('E_CHAIN_DENIED');
    expect(err.details).toMatchObject({ function: 'narrow', callee: 'writer' });
    expect(err.message).toMatch(/callees/);
    expect(await rt.state.size('secret-b')).toBe(0);
    // A name with a byte-order mark in front is another name, not 'say'.
    await rt.register('sayOnly', guestBytes('chain_proxy'), { callees: ['say'] });
    const bom = (await rt.invoke('sayOnly', '\uFEFFsay hi').catch((e: unknown) => e)) as NuvolaError;
    expect(bom.code).toBe('E_CHAIN_DENIED');
  });

  it('checks callees at register', async () => {
    const rt = await start();
    for (const callees of [['bad name!'], 'say', [''], [7]]) {
      const err = (await rt.register('p', guestBytes('chain_proxy'), { callees } as never).catch((e: unknown) => e)) as NuvolaError;
      expect(err.code).toBe('E_INVALID_OPTION');
      expect(err.details['path']).toBe('options.callees');
    }
    await rt.register('p', guestBytes('chain_proxy'), { callees: [] });
    const err = (await rt.invoke('p', 'p x').catch((e: unknown) => e)) as NuvolaError;
    expect(err.code).toBe('E_CHAIN_DENIED');
  });
});
